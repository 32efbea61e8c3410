"""The vad stage on stored objects: fetch the WAV, segment it, store the segments as JSON.

The document's key carries a hash of the settings, so one video segmented with two configs keeps
both, and the same config always writes the same key (idempotent)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from pathlib import Path

from services.common.config import config_digest
from services.common.gen.emofactory.v1 import common_pb2
from services.common.media import read_pcm
from services.common.service import Runtime
from services.common.store import object_key
from services.vad.config import VadConfig
from services.vad.stage import segment_speech, to_segments


def segments_document(video_id: str, config: VadConfig, duration_s: float, segments) -> bytes:
    doc = {
        "video_id": video_id,
        "duration_s": round(duration_s, 3),
        "config": dataclasses.asdict(config),
        "segments": [
            {
                "segment_id": s.segment_id,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "start_reason": common_pb2.SplitReason.Name(s.start_reason),
            }
            for s in segments
        ],
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def _segment_file(path: Path, video_id: str, config: VadConfig):
    pcm, rate = read_pcm(path)
    return to_segments(video_id, segment_speech(pcm, rate, config)), len(pcm) / rate


async def segment_stored_audio(
    rt: Runtime, audio: common_pb2.ObjectRef, video_id: str, config: VadConfig
) -> tuple[list[common_pb2.Segment], common_pb2.ObjectRef, float]:
    key = object_key(video_id, "vad", f"segments-{config_digest(config)}.json")
    with tempfile.TemporaryDirectory(dir=rt.work_dir) as tmp:
        wav = await asyncio.to_thread(rt.store.get_file, audio, Path(tmp) / "audio.wav")
        segments, duration = await asyncio.to_thread(_segment_file, wav, video_id, config)
    doc = segments_document(video_id, config, duration, segments)
    ref = await asyncio.to_thread(rt.store.put_bytes, key, doc, "application/json")
    return segments, ref, duration
