"""Job status in a JetStream key-value bucket, so that every stage of every replica can write
its part without a shared database:

    <job_id>                      Job (sources, context, resolution errors)
    <job_id>.<video_id>           VideoStatus (source, title)
    <job_id>.<video_id>.<stage>   StageStatus (done / failed / skipped, reason, items)
    <job_id>.<video_id>.<stage>.<chunk>   the same, of one chunk of the video (the stages after vad)

A stage's chunks are merged into one StageStatus when the job is read (`merge_chunks`).
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
# The states that stop a video (or a chunk of it) at a stage.
STOPPED = (S.STAGE_STATE_FAILED, S.STAGE_STATE_SKIPPED)
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

    async def record(self, job_id: str, video_id: str, status: pb.StageStatus, chunk: int = 0) -> None:
        """A stage's status on the video, or on its chunk `chunk` where `status.chunks` says the stage
        runs on chunks (0: on the whole video)."""
        status.updated_at.CopyFrom(_now())
        key = f"{job_id}.{video_id}.{status.stage}" + (f".{chunk}" if status.chunks else "")
        await self.kv.put(key, status.SerializeToString())

    async def get(self, job_id: str) -> pb.Job | None:
        try:
            job = pb.Job.FromString((await self.kv.get(job_id)).value)
        except KeyNotFoundError:
            return None
        videos: dict[str, pb.VideoStatus] = {}
        records: dict[str, dict[str, list[pb.StageStatus]]] = {}
        for key, value in await self._latest(f"{job_id}.>"):
            parts = key.split(".")
            if len(parts) == 2:
                videos[parts[1]] = pb.VideoStatus.FromString(value)
            elif len(parts) in (3, 4):
                records.setdefault(parts[1], {}).setdefault(parts[2], []).append(pb.StageStatus.FromString(value))
        for video_id in sorted(videos):
            video = videos[video_id]
            video.stages.extend(stage_statuses(records.get(video_id, {}), self.stages))
            job.videos.append(video)
        return settle(job, self.stages)


def settle(job: pb.Job, stages: Sequence[str]) -> pb.Job:
    """The job's state and per-stage summary, from its videos' stages."""
    job.state = job_state(job, stages)
    del job.summary[:]
    job.summary.extend(summarize(job, stages))
    return job


def add_counts(total, counts) -> None:
    for code, n in counts.items():
        total[code] += n


def merge_chunks(records: Sequence[pb.StageStatus]) -> pb.StageStatus:
    """One stage's records of one video as one status: the record itself when the stage ran on the
    whole video; else its chunks' counts summed, failed if one failed (the first failure's reason),
    done when every chunk is, and unspecified (running) until then."""
    if len(records) == 1 and not records[0].chunks:
        return records[0]
    first = records[0]
    merged = pb.StageStatus(stage=first.stage, chunks=max(r.chunks for r in records))
    merged.chunks_done = sum(r.state == S.STAGE_STATE_DONE for r in records)
    merged.chunks_failed = sum(r.state in STOPPED for r in records)
    merged.items, merged.flagged = sum(r.items for r in records), sum(r.flagged for r in records)
    for r in records:
        add_counts(merged.not_kept, r.not_kept)
    merged.attempts = max(r.attempts for r in records)
    merged.updated_at.CopyFrom(max(records, key=lambda r: r.updated_at.ToNanoseconds()).updated_at)
    failed = [r for r in records if r.state in STOPPED]
    merged.reason = (failed or [r for r in records if r.reason] or [first])[0].reason
    if failed:
        merged.state = failed[0].state
    elif merged.chunks_done >= merged.chunks:
        merged.state = S.STAGE_STATE_DONE
    return merged


def stage_statuses(records: dict[str, list[pb.StageStatus]], stages: Sequence[str]) -> list[pb.StageStatus]:
    """A video's stages in pipeline order, each stage's records merged."""
    order = {name: i for i, name in enumerate(stages)}
    merged = [merge_chunks(r) for r in records.values() if r]
    return sorted(merged, key=lambda s: order.get(s.stage, len(order)))


def video_done(video: pb.VideoStatus, stages: Sequence[str]) -> bool:
    done = {s.stage for s in video.stages if s.state == S.STAGE_STATE_DONE}
    return done.issuperset(stages)


def video_settled(video: pb.VideoStatus, stages: Sequence[str]) -> bool:
    """Done, or stopped: a stage that runs on the whole video failed or skipped it, or each chunk has
    either failed somewhere or been done by the last stage (the others' chunks go on meanwhile)."""
    if video_done(video, stages):
        return True
    if any(s.state in STOPPED and not s.chunks for s in video.stages):
        return True
    chunked = [s for s in video.stages if s.chunks]
    if not chunked:
        return False
    last = next((s for s in video.stages if s.stage == stages[-1]), None)
    settled = (last.chunks_done if last is not None else 0) + sum(s.chunks_failed for s in chunked)
    return settled >= max(s.chunks for s in chunked)


def summarize(job: pb.Job, stages: Sequence[str]) -> list[pb.StageSummary]:
    summary = {name: pb.StageSummary(stage=name) for name in stages}
    for video in job.videos:
        stopped = video_settled(video, stages)
        seen = {s.stage: s for s in video.stages}
        for name, row in summary.items():
            status = seen.get(name)
            if status is None or status.state == S.STAGE_STATE_UNSPECIFIED:
                row.pending += not stopped
            elif status.state == S.STAGE_STATE_DONE:
                row.done += 1
                row.flagged += status.flagged
                add_counts(row.not_kept, status.not_kept)
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
