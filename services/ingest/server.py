"""gRPC IngestService: SubmitJob validates and publishes the job; GetJob reports its progress."""

from __future__ import annotations

import asyncio
import uuid

from services.asr import config as asr_config
from services.common.bus import publish
from services.common.config import load_section
from services.common.errors import InvalidRequest, NotFound
from services.common.events import JOB_SUBMITTED
from services.common.gen.emofactory.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
from services.common.service import Runtime, grpc_errors
from services.common.store import key_part, parse_s3_uri
from services.ingest import sources
from services.ingest.config import IngestConfig
from services.labeler import config as labeler_config
from services.vad import config as vad_config
from services.vision import config as vision_config

# Per-stage job options checked at submission, so a bad value fails the call instead of the job.
STAGE_OPTIONS = {
    "vad": (vad_config.VadConfig, vad_config.checked_options),
    "vision": (vision_config.VisionConfig, vision_config.checked_options),
    "asr": (asr_config.AsrConfig, asr_config.checked_options),
    "labeler": (labeler_config.LabelerConfig, labeler_config.checked_options),
}


def validate_sources(request: ingest_pb2.SubmitJobRequest, config: IngestConfig) -> None:
    """Fails fast, naming the field, on what the worker would refuse anyway."""
    if not request.sources:
        raise InvalidRequest("sources", "at least one source is required")
    for i, source in enumerate(request.sources):
        field = f"sources[{i}]"
        kind = source.WhichOneof("kind")
        if kind is None:
            raise InvalidRequest(field, "names no url, search, path or s3_uri")
        if kind == "url":
            sources.check_url(source.url, config.allow_hosts, f"{field}.url")
        elif kind == "search":
            sources.search_targets(source.search, config, f"{field}.search")
        elif kind == "path":
            sources.check_local_path(source.path, config.local_roots, f"{field}.path")
        else:
            parse_s3_uri(source.s3_uri)


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.defaults = load_section(IngestConfig, "ingest")
        self.stage_defaults = {name: load_section(cls, name) for name, (cls, _) in STAGE_OPTIONS.items()}

    @grpc_errors
    async def SubmitJob(self, request, context):
        job_id = request.job_id or uuid.uuid4().hex
        key_part(job_id, "job_id")
        options = request.config
        config = sources.checked_config(self.defaults, options.ingest if options.HasField("ingest") else None)
        for name, (_, check) in STAGE_OPTIONS.items():
            if options.HasField(name):
                try:
                    check(self.stage_defaults[name], getattr(options, name))
                except InvalidRequest as exc:
                    raise InvalidRequest(f"config.{name}.{exc.field.removeprefix('options.')}", str(exc)) from exc
        await asyncio.to_thread(validate_sources, request, config)
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
        return ingest_pb2.SubmitJobResponse(job_id=job_id, created=created)

    @grpc_errors
    async def GetJob(self, request, context):
        key_part(request.job_id, "job_id")
        job = await self.rt.jobs.get(request.job_id)
        if job is None:
            raise NotFound(f"no job {request.job_id!r}")
        return ingest_pb2.GetJobResponse(job=job)


def register(server, rt: Runtime) -> list[str]:
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(rt), server)
    return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]
