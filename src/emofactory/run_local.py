"""The pipeline in one process, on local files: `run_local(sources)` submits a job as SubmitJob would
and runs every event through the stages that consume it, in order, with a folder as the object store
(`FileStore`). The same stage objects, configs and job accounting as the services, without NATS or
S3: for evaluation, benchmarks and stage tests.

A transient failure is retried (`retries` times), a permanent one recorded on the video as a failure
of its stage, as a dead letter would be."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message

from emofactory.core.adapters import add_videos, record_output
from emofactory.core.errors import PermanentError, TransientError
from emofactory.core.events import JOB_SUBMITTED, chunk_of, context_of, video_id_of
from emofactory.core.jobs import settle, stage_statuses
from emofactory.core.stage import Output, Stage, StageContext
from emofactory.core.store import FileStore
from emofactory.pipeline import STAGES
from emofactory.v1 import common_pb2, events_pb2

log = logging.getLogger(__name__)


@dataclass
class LocalRun:
    """A finished in-process job: its status (as GetJob reports it), every event by subject, the store."""

    job: common_pb2.Job
    events: dict[str, list[Message]] = field(default_factory=dict)
    store: FileStore | None = None

    def of(self, subject: str) -> list[Message]:
        return self.events.get(subject, [])


class _Status:
    """The job's status kept in memory, with JobStore's methods (the adapters' record_output uses it)."""

    def __init__(self, job: common_pb2.Job, names: Sequence[str]):
        self.job, self.names, self.videos = job, tuple(names), {}
        self.records: dict[str, dict[str, dict[int, common_pb2.StageStatus]]] = {}  # video -> stage -> chunk

    async def add_video(self, job_id: str, video_id: str, source: str, title: str = "") -> None:
        self.videos.setdefault(video_id, common_pb2.VideoStatus(video_id=video_id, source=source, title=title))

    async def update(self, job_id: str, change) -> None:
        change(self.job)

    async def record(self, job_id: str, video_id: str, status: common_pb2.StageStatus, chunk: int = 0) -> None:
        self.videos.setdefault(video_id, common_pb2.VideoStatus(video_id=video_id))
        self.records.setdefault(video_id, {}).setdefault(status.stage, {})[chunk] = status

    def settled(self) -> common_pb2.Job:
        job = common_pb2.Job()
        job.CopyFrom(self.job)
        for video_id in sorted(self.videos):
            video = job.videos.add()
            video.CopyFrom(self.videos[video_id])
            by_stage = {stage: list(chunks.values()) for stage, chunks in self.records.get(video_id, {}).items()}
            video.stages.extend(stage_statuses(by_stage, self.names))
        return settle(job, self.names)


async def run_local(
    sources: Sequence[common_pb2.Source],
    root: Path | str,
    *,
    config: common_pb2.JobConfig | None = None,
    language: str = "en-US",
    stages: Sequence[type[Stage]] = STAGES,
    defaults: Mapping[str, object] | None = None,
    job_id: str = "",
    retries: int = 2,
) -> LocalRun:
    """`defaults`: per stage name, the config to start from (else its section of the settings, as a
    service reads it); `stages`: a prefix of the pipeline to stop early (without the catalog, say)."""
    root = Path(root)
    store = FileStore(root / "store")
    store.ensure_bucket()
    (root / "work").mkdir(parents=True, exist_ok=True)
    ctx = StageContext(store, str(root / "work"))
    running = [cls(ctx, (defaults or {}).get(cls.name)) for cls in stages]
    for stage in running:  # a wrong setting stops the run here, named, as it keeps a service NOT_SERVING
        await asyncio.to_thread(stage.start)
    context = common_pb2.JobContext(job_id=job_id or uuid.uuid4().hex, language=language, config=config)
    context.submitted_at.GetCurrentTime()
    status = _Status(common_pb2.Job(job_id=context.job_id, sources=sources, context=context), [s.name for s in stages])
    run = LocalRun(common_pb2.Job(), store=store)
    queue = deque([(JOB_SUBMITTED, events_pb2.JobSubmitted(context=context, sources=sources))])
    while queue:
        subject, event = queue.popleft()
        run.events.setdefault(subject, []).append(event)
        for stage in (s for s in running if subject in s.consumes):
            out = await _deliver(stage, subject, event, status, retries)
            if out is not None:
                queue.extend(out.events)
    run.job = status.settled()
    return run


async def _deliver(stage: Stage, subject: str, event, status: _Status, retries: int) -> Output | None:
    for attempt in range(retries + 1):
        try:
            out = await stage.on_event(subject, event, stage.config_for(context_of(event)))
            break
        except TransientError as exc:
            if attempt == retries:
                return await _failed(stage, event, status, f"gave up after {attempt + 1} attempts: {exc}")
            await asyncio.sleep(0.5 * 2**attempt)
        except PermanentError as exc:
            return await _failed(stage, event, status, str(exc))
    if out is not None:
        await add_videos(status, event, out)
        await record_output(status, stage, event, out)
    return out


async def _failed(stage: Stage, event, status: _Status, reason: str) -> None:
    """As a dead letter records it: on the video, else (no video yet) on the job."""
    video_id = video_id_of(event)
    log.info("stage failed", extra={"stage": stage.name, "video_id": video_id, "reason": reason})
    if video_id:
        chunk, chunks = chunk_of(event)
        failed = common_pb2.StageStatus(
            stage=stage.name, state=common_pb2.STAGE_STATE_FAILED, reason=reason, chunks=chunks
        )
        await status.record(context_of(event).job_id, video_id, failed, chunk)
    else:
        status.job.errors.append(f"{stage.name}: {reason}")
        status.job.resolved = True
