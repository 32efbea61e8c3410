"""The audio stage on stored objects: fetch the video, extract, store the WAV under its fixed key."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from services.audio.config import AudioConfig
from services.audio.stage import extract_audio
from services.common.gen.emofactory.v1 import common_pb2
from services.common.service import Runtime
from services.common.store import object_key


async def extract_stored_audio(
    rt: Runtime, video: common_pb2.ObjectRef, video_id: str, config: AudioConfig
) -> tuple[common_pb2.ObjectRef, common_pb2.MediaInfo]:
    key = object_key(video_id, "audio", "audio.wav")
    with tempfile.TemporaryDirectory(dir=rt.work_dir) as tmp:
        source = await asyncio.to_thread(rt.store.get_file, video, Path(tmp) / "video")
        media = await asyncio.to_thread(extract_audio, source, Path(tmp) / "audio.wav", config)
        ref = await asyncio.to_thread(rt.store.put_file, key, Path(tmp) / "audio.wav", "audio/wav")
    return ref, media
