"""emo.vision.analyzed + emo.asr.transcribed (joined per job and video) -> labels -> emo.labeler.labeled."""

from __future__ import annotations

from services.common.backend import backend_for
from services.common.bus import publish
from services.common.config import ModelsConfig, load_section
from services.common.events import SEGMENTS_LABELED, VISION_ANALYZED, message_id
from services.common.gen.emofactory.v1 import common_pb2, events_pb2, labeler_pb2
from services.common.service import Runtime
from services.labeler.config import LabelerConfig, checked_options
from services.labeler.join import join
from services.labeler.storage import label_stored_segments
from services.models.text_emotion import MODEL_NAMES


def evidence_of(vision: events_pb2.VisionAnalyzed, asr: events_pb2.SpeechTranscribed):
    """Per segment, what vision and asr found; and the segments asr's dialogue mode dropped."""
    faces = {v.segment_id: v for v in vision.vision}
    texts = {t.segment_id: t for t in asr.transcripts}
    evidence, excluded = [], {}
    for segment in vision.segments:
        face, text = faces.get(segment.segment_id), texts.get(segment.segment_id)
        e = labeler_pb2.SegmentEvidence(segment=segment)
        if face is not None:
            e.face_ratio, e.face_vote = face.face_ratio, face.vote
            if face.face_frames:
                e.face.CopyFrom(face.face)
        if text is not None and not text.failed:
            e.transcript = text.text
        if text is not None and not text.kept:
            excluded[segment.segment_id] = f"dropped by dialogue segmentation: {text.drop_reason}"
        evidence.append(e)
    return evidence, excluded


def make_handler(rt: Runtime):
    defaults = load_section(LabelerConfig, "labeler")
    models = load_section(ModelsConfig, "models")
    backend = backend_for(models)
    text_model = MODEL_NAMES.get(models.text_emotion_engine, models.text_emotion_engine)

    async def handle(subject: str, event) -> None:
        joined = await join(rt, "vision" if subject == VISION_ANALYZED else "asr", event)
        if joined is None:
            return  # the other half labels the video when it arrives
        vision, asr = joined
        ctx = vision.context
        config = checked_options(defaults, ctx.config.labeler if ctx.config.HasField("labeler") else None)
        evidence, excluded = evidence_of(vision, asr)
        labels, doc = await label_stored_segments(
            rt, backend, vision.audio, vision.video_id, evidence, config, excluded, text_model
        )
        out = events_pb2.SegmentsLabeled(
            context=ctx,
            video_id=vision.video_id,
            video=vision.video,
            audio=vision.audio,
            segments=vision.segments,
            vision=vision.vision,
            transcripts=asr.transcripts,
            labels=labels,
            labels_doc=doc,
        )
        await publish(rt.js, SEGMENTS_LABELED, out, message_id(ctx.job_id, vision.video_id, "labeler.labeled"))
        kept = sum(x.label.kept for x in labels)
        await rt.jobs.record(
            ctx.job_id,
            vision.video_id,
            "labeler",
            common_pb2.STAGE_STATE_DONE,
            reason=f"{kept} of {len(labels)} kept",
            items=kept,
        )

    return handle
