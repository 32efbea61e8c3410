"""Joins the vision and asr results of one chunk of one video of one job, whichever arrives first.

Each arrival stores its event under a deterministic key, then looks for the other's. S3 reads see
earlier writes, so of two arrivals at least the second finds both; if both do (two replicas at
the same moment), both compute the same label objects and the labelled event's Nats-Msg-Id keeps
one copy in the stream."""

from __future__ import annotations

import asyncio

from emofactory.core.store import object_key
from emofactory.v1 import events_pb2

PARTS = {"vision": events_pb2.VisionAnalyzed, "asr": events_pb2.SpeechTranscribed}


def part_key(video_id: str, job_id: str, chunk: int, part: str) -> str:
    return object_key(video_id, "labeler", f"join-{job_id}-{chunk}-{part}.pb")


async def join(store, part: str, event) -> tuple[events_pb2.VisionAnalyzed, events_pb2.SpeechTranscribed] | None:
    """Both halves once both have arrived, else None."""
    job_id, video_id, chunk = event.envelope.context.job_id, event.envelope.video_id, event.envelope.chunk
    key = part_key(video_id, job_id, chunk, part)
    await asyncio.to_thread(store.put_bytes, key, event.SerializeToString(), "application/x-protobuf")
    halves = {part: event}
    for other, kind in PARTS.items():
        if other == part:
            continue
        other_key = part_key(video_id, job_id, chunk, other)
        if not await asyncio.to_thread(store.exists, other_key):
            return None
        data = await asyncio.to_thread(store.get_bytes, store.ref(other_key))
        halves[other] = kind.FromString(data)
    return halves["vision"], halves["asr"]
