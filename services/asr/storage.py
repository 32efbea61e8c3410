"""The asr stage on stored objects: fetch the WAV, transcribe the segments, store the transcripts
as JSON under a key that carries the settings' digest (language included)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from google.protobuf.json_format import MessageToDict

from services.asr.config import AsrConfig
from services.asr.engines import Engine, make_engine
from services.asr.stage import transcribe_segments
from services.common.backend import ModelBackend
from services.common.config import config_digest
from services.common.gen.emofactory.v1 import asr_pb2, common_pb2
from services.common.media import read_pcm
from services.common.service import Runtime
from services.common.store import object_key


@cache
def engine_for(config: AsrConfig, backend: ModelBackend) -> Engine:
    """Engines load their models once per process and settings."""
    return make_engine(config, backend)


def transcripts_document(video_id: str, config: AsrConfig, transcripts) -> bytes:
    doc = {
        "video_id": video_id,
        "config": dataclasses.asdict(config),
        "transcripts": [MessageToDict(t, preserving_proto_field_name=True) for t in transcripts],
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False).encode()


def _transcribe_file(path: Path, video_id: str, segments, config: AsrConfig, backend: ModelBackend):
    pcm, rate = read_pcm(path)
    engine = engine_for(dataclasses.replace(config, language=""), backend)
    return transcribe_segments(pcm, rate, video_id, segments, config.language, engine, config)


async def transcribe_stored_audio(
    rt: Runtime,
    backend: ModelBackend,
    audio: common_pb2.ObjectRef,
    video_id: str,
    segments: Sequence[common_pb2.Segment],
    config: AsrConfig,
) -> tuple[list[asr_pb2.SegmentTranscript], common_pb2.ObjectRef]:
    """`config.language` is the language actually used (the job's, else the default)."""
    with tempfile.TemporaryDirectory(dir=rt.work_dir) as tmp:
        wav = await asyncio.to_thread(rt.store.get_file, audio, Path(tmp) / "audio.wav")
        transcripts = await asyncio.to_thread(_transcribe_file, wav, video_id, list(segments), config, backend)
    key = object_key(video_id, "asr", config_digest(config), "transcripts.json")
    doc = transcripts_document(video_id, config, transcripts)
    ref = await asyncio.to_thread(rt.store.put_bytes, key, doc, "application/json")
    return transcripts, ref
