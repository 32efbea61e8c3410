"""gRPC IngestService: SubmitJob validates and publishes the job; GetJob reports its progress."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence

from emofactory.core.bus import publish
from emofactory.core.config import load_section
from emofactory.core.errors import InvalidRequest, NotFound
from emofactory.core.events import JOB_SUBMITTED
from emofactory.core.jobs import check_job_id
from emofactory.core.service import Runtime, grpc_errors
from emofactory.core.stage import Stage
from emofactory.core.store import parse_s3_uri, readable_bucket
from emofactory.stages.ingest import sources
from emofactory.stages.ingest.config import IngestConfig
from emofactory.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc


def option_checks(stages: Sequence[type[Stage]]) -> dict:
    """Per stage of the pipeline with job options (a JobConfig field named after it, ingest's own
    aside): the stage and this process's defaults, so a bad value fails SubmitJob instead of the job."""
    fields = common_pb2.JobConfig.DESCRIPTOR.fields_by_name
    return {s.name: (s, load_section(s.config_type, s.name)) for s in stages if s.name in fields}


def job_field(name: str, exc: InvalidRequest) -> InvalidRequest:
    """A stage's error on its options, named as SubmitJob's field (config.<stage>.<option>)."""
    return InvalidRequest(f"config.{name}.{exc.field.removeprefix('options.').removeprefix('options')}".rstrip("."),
                          str(exc).removeprefix(f"{exc.field}: "))  # fmt: skip


# A BCP-47 tag as ASR engines take it: a language, then up to three subtags (ar-EG, zh-Hant-TW).
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")
MAX_SOURCES = 256
MAX_SOURCE_TEXT = 4096


def validate_sources(request: ingest_pb2.SubmitJobRequest, config: IngestConfig, store) -> None:
    """Fails fast, naming the field, on what the worker would refuse anyway."""
    if request.language and not LANGUAGE.fullmatch(request.language):
        raise InvalidRequest("language", f"a BCP-47 tag such as en-US or ar-EG, not {request.language[:40]!r}")
    if not 1 <= len(request.sources) <= MAX_SOURCES:
        raise InvalidRequest("sources", f"1 to {MAX_SOURCES} sources, not {len(request.sources)}")
    for i, source in enumerate(request.sources):
        field = f"sources[{i}]"
        kind = source.WhichOneof("kind")
        if kind is None:
            raise InvalidRequest(field, "names no url, search, path or s3_uri")
        text = "\n".join(source.search.keywords) if kind == "search" else getattr(source, kind)
        if len(text) > MAX_SOURCE_TEXT or "\0" in text:
            raise InvalidRequest(f"{field}.{kind}", f"at most {MAX_SOURCE_TEXT} characters, no NUL")
        if kind == "search" and source.search.target not in common_pb2.SearchTarget.values():
            raise InvalidRequest(f"{field}.search.target", f"unknown target {source.search.target}")
        if kind == "url":
            sources.check_url(source.url, config.allow_hosts, f"{field}.url")
        elif kind == "search":
            sources.search_targets(source.search, config, f"{field}.search")
        elif kind == "path":
            sources.check_local_path(source.path, config.local_roots, f"{field}.path")
        else:
            bucket, _ = parse_s3_uri(source.s3_uri)
            readable_bucket(bucket, store.bucket, store.read_buckets, f"{field}.s3_uri")


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, rt: Runtime | None, defaults: IngestConfig, stages: Sequence[type[Stage]]):
        """`stages`: the pipeline's, in order (the serving process passes them: `Runtime.pipeline`)."""
        self.rt = rt
        self.defaults = defaults
        self.checks = {name: check for name, check in option_checks(stages).items() if name != "ingest"}

    @grpc_errors
    async def SubmitJob(self, request, context):
        job_id = check_job_id(request.job_id or uuid.uuid4().hex)
        options = request.config
        config = sources.checked_config(self.defaults, options.ingest if options.HasField("ingest") else None)
        warnings = await asyncio.to_thread(self.unkeepable, options)
        await asyncio.to_thread(validate_sources, request, config, self.rt.store)
        ctx = common_pb2.JobContext(
            job_id=job_id, language=request.language or self.defaults.default_language, config=options
        )
        ctx.submitted_at.GetCurrentTime()
        job = common_pb2.Job(job_id=job_id, sources=request.sources, context=ctx)
        created = await self.rt.jobs.create(job)
        # Published even for a known job_id: a retry after a crash between the two steps still
        # starts the job, and Nats-Msg-Id keeps a second copy out of the stream.
        submitted = events_pb2.JobSubmitted(context=ctx, sources=request.sources)
        await publish(self.rt.js, JOB_SUBMITTED, submitted, f"{job_id}.submitted")
        return ingest_pb2.SubmitJobResponse(job_id=job_id, created=created, warnings=warnings)

    def unkeepable(self, options: common_pb2.JobConfig) -> list[str]:
        """Each stage's options checked over its defaults; a job that would keep nothing is refused,
        or (ingest.allow_unkeepable_jobs) accepted with the reasons as warnings."""
        warnings = []
        for name, (stage, defaults) in self.checks.items():
            try:
                problem = stage.unkeepable(stage.job_config(options, defaults))
            except InvalidRequest as exc:
                raise job_field(name, exc) from exc
            if problem and not self.defaults.allow_unkeepable_jobs:
                raise job_field(name, problem)
            warnings += [str(job_field(name, problem))] if problem else []
        return warnings

    @grpc_errors
    async def GetJob(self, request, context):
        check_job_id(request.job_id)
        job = await self.rt.jobs.get(request.job_id)
        if job is None:
            raise NotFound(f"no job {request.job_id!r}")
        return ingest_pb2.GetJobResponse(job=job)


def register(server, rt: Runtime, defaults: IngestConfig) -> list[str]:
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(rt, defaults, rt.pipeline), server)
    return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]
