"""emo.ingest.downloaded -> audio WAV in the store -> emo.audio.extracted."""

from __future__ import annotations

from services.audio.config import AudioConfig
from services.audio.storage import extract_stored_audio
from services.common.bus import publish
from services.common.config import load_section
from services.common.events import AUDIO_EXTRACTED, message_id
from services.common.gen.emofactory.v1 import common_pb2, events_pb2
from services.common.service import Runtime


def make_handler(rt: Runtime):
    config = load_section(AudioConfig, "audio")

    async def handle(subject: str, event: events_pb2.VideoDownloaded) -> None:
        ctx = event.context
        audio, media = await extract_stored_audio(rt, event.video, event.video_id, config)
        out = events_pb2.AudioExtracted(
            context=ctx, video_id=event.video_id, video=event.video, audio=audio, media=media
        )
        await publish(rt.js, AUDIO_EXTRACTED, out, message_id(ctx.job_id, event.video_id, "audio.extracted"))
        await rt.jobs.record(ctx.job_id, event.video_id, "audio", common_pb2.STAGE_STATE_DONE, items=1)

    return handle
