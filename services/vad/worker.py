"""emo.audio.extracted -> speech segments in the store -> emo.vad.segmented."""

from __future__ import annotations

from services.common.bus import publish
from services.common.config import load_section
from services.common.events import SPEECH_SEGMENTED, message_id
from services.common.gen.emofactory.v1 import common_pb2, events_pb2
from services.common.service import Runtime
from services.vad.config import VadConfig, checked_options
from services.vad.storage import segment_stored_audio


def make_handler(rt: Runtime):
    defaults = load_section(VadConfig, "vad")

    async def handle(subject: str, event: events_pb2.AudioExtracted) -> None:
        ctx = event.context
        config = checked_options(defaults, ctx.config.vad if ctx.config.HasField("vad") else None)
        segments, doc, _ = await segment_stored_audio(rt, event.audio, event.video_id, config)
        out = events_pb2.SpeechSegmented(
            context=ctx,
            video_id=event.video_id,
            video=event.video,
            audio=event.audio,
            segments=segments,
            segments_doc=doc,
        )
        await publish(rt.js, SPEECH_SEGMENTED, out, message_id(ctx.job_id, event.video_id, "vad.segmented"))
        await rt.jobs.record(ctx.job_id, event.video_id, "vad", common_pb2.STAGE_STATE_DONE, items=len(segments))

    return handle
