"""emo.vad.segmented -> faces and facial emotion per segment in the store -> emo.vision.analyzed."""

from __future__ import annotations

from services.common.backend import backend_for
from services.common.bus import publish
from services.common.config import ModelsConfig, load_section
from services.common.events import VISION_ANALYZED, message_id
from services.common.gen.emofactory.v1 import common_pb2, events_pb2
from services.common.service import Runtime
from services.vision.config import VisionConfig, checked_options
from services.vision.storage import analyze_stored_video


def make_handler(rt: Runtime):
    defaults = load_section(VisionConfig, "vision")
    backend = backend_for(load_section(ModelsConfig, "models"))

    async def handle(subject: str, event: events_pb2.SpeechSegmented) -> None:
        ctx = event.context
        config = checked_options(defaults, ctx.config.vision if ctx.config.HasField("vision") else None)
        vision, doc = await analyze_stored_video(rt, backend, event.video, event.video_id, event.segments, config)
        out = events_pb2.VisionAnalyzed(
            context=ctx,
            video_id=event.video_id,
            video=event.video,
            audio=event.audio,
            segments=event.segments,
            vision=vision,
            vision_doc=doc,
        )
        await publish(rt.js, VISION_ANALYZED, out, message_id(ctx.job_id, event.video_id, "vision.analyzed"))
        with_face = sum(v.face_frames > 0 for v in vision)
        await rt.jobs.record(
            ctx.job_id, event.video_id, "vision", common_pb2.STAGE_STATE_DONE, items=with_face,
            flagged=len(vision) - with_face,
        )  # fmt: skip

    return handle
