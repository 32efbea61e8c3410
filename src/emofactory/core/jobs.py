"""Job status in a JetStream key-value bucket, so that every stage of every replica can write
its part without a shared database:

    <job_id>                      Job (sources, context, resolution errors)
    <job_id>.<video_id>           VideoStatus (source, title)
    <job_id>.<video_id>.<stage>   StageStatus (done / failed / skipped, reason, items)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from emofactory.core.errors import InvalidRequest
from emofactory.v1 import common_pb2 as pb

S = pb.StageState
# The states a job ends in.
SETTLED = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_PARTIAL, pb.JOB_STATE_FAILED, pb.JOB_STATE_FILTERED)
# A job id is one token of the status keys above: no '.', which would split it in two.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_job_id(job_id: str, field: str = "job_id") -> str:
    if not _JOB_ID.fullmatch(job_id or ""):
        raise InvalidRequest(field, f"{job_id[:40]!r} is not a job id: 1-64 letters, digits, '_' or '-'")
    return job_id


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


class JobStore:
    """`stages`: the pipeline's stage names in order (`pipeline.NAMES`); a video is done when every
    one of them is."""

    def __init__(self, kv, js, bucket: str, stages: Sequence[str]):
        self.kv, self.js, self.bucket, self.stages = kv, js, bucket, tuple(stages)

    @classmethod
    async def open(cls, js, bucket: str, stages: Sequence[str]) -> JobStore:
        return cls(await js.key_value(bucket), js, bucket, stages)

    async def _latest(self, prefix: str) -> list[tuple[str, bytes]]:
        """(key, value) of every live key under `prefix`: the last message per subject, read through
        an ephemeral consumer whose pending count says exactly how many to expect (a KV watch can
        report "caught up" before it has delivered every key)."""
        subject = f"$KV.{self.bucket}.{prefix}"
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, ack_policy=api.AckPolicy.NONE, inactive_threshold=30
        )
        sub = await self.js.pull_subscribe(subject, stream=f"KV_{self.bucket}", config=config)
        try:
            expected = (await sub.consumer_info()).num_pending
            out = []
            while len(out) < expected:
                for msg in await sub.fetch(min(expected - len(out), 256), timeout=5):
                    out.append(msg)
        finally:
            await sub.unsubscribe()
        live = [m for m in out if (m.headers or {}).get("KV-Operation") not in ("DEL", "PURGE")]
        return [(m.subject.removeprefix(f"$KV.{self.bucket}."), m.data) for m in live]

    async def create(self, job: pb.Job) -> bool:
        """Stores a new job; False if one with this id exists already (submissions are idempotent)."""
        job.created_at.CopyFrom(_now())
        job.state = pb.JOB_STATE_RESOLVING
        try:
            await self.kv.create(job.job_id, job.SerializeToString())
            return True
        except KeyWrongLastSequenceError:
            return False

    async def update(self, job_id: str, change: Callable[[pb.Job], None]) -> None:
        """Read-modify-write with optimistic concurrency: retried when another writer came first."""
        while True:
            entry = await self.kv.get(job_id)
            job = pb.Job.FromString(entry.value)
            change(job)
            try:
                await self.kv.update(job_id, job.SerializeToString(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue

    async def fail_resolution(self, job_id: str, reason: str) -> None:
        """The job's sources could not be resolved at all: say why, and let the job settle."""

        def change(job: pb.Job) -> None:
            job.errors.append(reason)
            job.resolved = True

        await self.update(job_id, change)

    async def add_video(self, job_id: str, video_id: str, source: str, title: str = "") -> None:
        video = pb.VideoStatus(video_id=video_id, source=source, title=title)
        await self.kv.put(f"{job_id}.{video_id}", video.SerializeToString())

    async def record(
        self,
        job_id: str,
        video_id: str,
        stage: str,
        state: int,
        reason: str = "",
        items: int = 0,
        attempts: int = 1,
        flagged: int = 0,
    ) -> None:
        status = pb.StageStatus(
            stage=stage, state=state, reason=reason, items=items, attempts=attempts, updated_at=_now(), flagged=flagged
        )
        await self.kv.put(f"{job_id}.{video_id}.{stage}", status.SerializeToString())

    async def get(self, job_id: str) -> pb.Job | None:
        try:
            job = pb.Job.FromString((await self.kv.get(job_id)).value)
        except KeyNotFoundError:
            return None
        videos: dict[str, pb.VideoStatus] = {}
        stages: dict[str, list[pb.StageStatus]] = {}
        for key, value in await self._latest(f"{job_id}.>"):
            parts = key.split(".")
            if len(parts) == 2:
                videos[parts[1]] = pb.VideoStatus.FromString(value)
            elif len(parts) == 3:
                stages.setdefault(parts[1], []).append(pb.StageStatus.FromString(value))
        for video_id in sorted(videos):
            video = videos[video_id]
            order = {name: i for i, name in enumerate(self.stages)}
            video.stages.extend(sorted(stages.get(video_id, []), key=lambda s: order.get(s.stage, len(order))))
            job.videos.append(video)
        job.state = job_state(job, self.stages)
        job.summary.extend(summarize(job, self.stages))
        return job


def video_done(video: pb.VideoStatus, stages: Sequence[str]) -> bool:
    done = {s.stage for s in video.stages if s.state == S.STAGE_STATE_DONE}
    return done.issuperset(stages)


def video_settled(video: pb.VideoStatus, stages: Sequence[str]) -> bool:
    return video_done(video, stages) or any(
        s.state in (S.STAGE_STATE_FAILED, S.STAGE_STATE_SKIPPED) for s in video.stages
    )


def summarize(job: pb.Job, stages: Sequence[str]) -> list[pb.StageSummary]:
    summary = {name: pb.StageSummary(stage=name) for name in stages}
    for video in job.videos:
        stopped = any(s.state in (S.STAGE_STATE_FAILED, S.STAGE_STATE_SKIPPED) for s in video.stages)
        seen = {s.stage: s for s in video.stages}
        for name, row in summary.items():
            status = seen.get(name)
            if status is None:
                row.pending += not stopped
            elif status.state == S.STAGE_STATE_DONE:
                row.done += 1
                row.flagged += status.flagged
            elif status.state == S.STAGE_STATE_FAILED:
                row.failed += 1
            elif status.state == S.STAGE_STATE_SKIPPED:
                row.skipped += 1
    return list(summary.values())


def job_state(job: pb.Job, stages: Sequence[str]) -> int:
    if not job.resolved:
        return pb.JOB_STATE_RESOLVING
    if not all(video_settled(v, stages) for v in job.videos):
        return pb.JOB_STATE_RUNNING
    done = sum(video_done(v, stages) for v in job.videos)
    if job.videos and done == len(job.videos) and not job.errors:
        return pb.JOB_STATE_SUCCEEDED
    if done:
        return pb.JOB_STATE_PARTIAL
    states = {s.state for v in job.videos for s in v.stages}
    if job.videos and not job.errors and S.STAGE_STATE_FAILED not in states:
        return pb.JOB_STATE_FILTERED  # every video stopped by a filter the job chose
    return pb.JOB_STATE_FAILED
