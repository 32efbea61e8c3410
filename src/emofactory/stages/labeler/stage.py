"""The labeler stage: per segment, the evidence of vision and asr (joined per job and video, whichever
arrives first) and the video's WAV for the audio model -> per-modality scores and a fused label,
stored as JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter

from google.protobuf.json_format import MessageToDict

from emofactory.core.config import ModelsConfig, config_digest, load_section
from emofactory.core.errors import InvalidRequest
from emofactory.core.events import SEGMENTS_LABELED, SPEECH_TRANSCRIBED, VISION_ANALYZED, forward
from emofactory.core.media import check_segments, read_pcm, span_name
from emofactory.core.stage import Output, Rpc
from emofactory.core.store import check_key, key_part, object_key
from emofactory.models.info import emotion_models
from emofactory.stages.base import ModelStage
from emofactory.stages.labeler.config import LabelerConfig, checked_options, unkeepable
from emofactory.stages.labeler.join import join
from emofactory.stages.labeler.labels import label_of_probabilities, label_segments
from emofactory.v1 import common_pb2, events_pb2, labeler_pb2


def labels_document(video_id: str, config: LabelerConfig, labels) -> bytes:
    doc = {
        "video_id": video_id,
        "config": dataclasses.asdict(config),
        "kept": sum(x.label.kept for x in labels),
        "labels": [MessageToDict(x, preserving_proto_field_name=True) for x in labels],
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False).encode()


def evidence_of(vision: events_pb2.VisionAnalyzed, asr: events_pb2.SpeechTranscribed):
    """Per segment, what vision and asr found (and the segments asr's dialogue mode dropped)."""
    faces = {v.segment_id: v for v in vision.vision}
    texts = {t.segment_id: t for t in asr.transcripts}
    evidence = []
    for segment in vision.segments:
        face, text = faces.get(segment.segment_id), texts.get(segment.segment_id)
        e = labeler_pb2.SegmentEvidence(segment=segment)
        if face is not None:
            e.face_ratio, e.face_vote = face.face_ratio, face.vote
            e.speaker_off_screen = "off_screen_speaker" in face.flags
            if face.face_frames:
                e.face.CopyFrom(face.face)
        if text is not None and not text.failed:
            e.transcript = text.text
        if text is not None and not text.kept:
            e.exclusion = f"dropped by dialogue segmentation: {text.drop_reason}"
        evidence.append(e)
    return evidence


def not_kept(labels) -> dict[str, int]:
    """Segments not kept, by each reason code they carry (modality_missing says what the others lacked)."""
    counts = Counter(code for x in labels if not x.label.kept for code in x.label.reason_codes)
    return dict(sorted(counts.items()))


class LabelerStage(ModelStage):
    name = "labeler"
    consumes = {VISION_ANALYZED: events_pb2.VisionAnalyzed, SPEECH_TRANSCRIBED: events_pb2.SpeechTranscribed}
    produces = (SEGMENTS_LABELED,)
    config_type = LabelerConfig
    rpc = Rpc(labeler_pb2, "LabelerService", "LabelSegments")
    check = staticmethod(checked_options)
    # A label from given probabilities alone (the evaluation's face and speech files paired by emotion).
    label_of_probabilities = staticmethod(label_of_probabilities)

    @property
    def model_names(self) -> dict[str, str]:
        return {m: self.model_name(m) for m in ("audio", "text")}

    @classmethod
    def unkeepable(cls, config: LabelerConfig):
        return unkeepable(config, emotion_models(load_section(ModelsConfig, "models")))

    def models_used(self) -> tuple[str, ...]:
        # No speech-emotion model is a choice (SubmitJob says what it costs), a wrong one a fault.
        return ("text_emotion", *(("speech_emotion",) if self.models.speech_emotion_path else ()))

    def validate(self, request: labeler_pb2.LabelSegmentsRequest) -> None:
        key_part(request.video_id, "video_id")
        if not request.segments:
            raise InvalidRequest("segments", "at least one segment is required")
        check_segments([e.segment for e in request.segments])
        for i, e in enumerate(request.segments):
            if not 0 <= e.face_ratio <= 1:
                raise InvalidRequest(f"segments[{i}].face_ratio", f"must be in [0, 1], not {e.face_ratio}")
        if request.audio.key:
            check_key(request.audio.key, "audio.key")

    async def run(
        self, request: labeler_pb2.LabelSegmentsRequest, config: LabelerConfig
    ) -> labeler_pb2.LabelSegmentsResponse:
        pcm, rate = None, 16000
        if request.audio.key:
            pcm, rate = await asyncio.to_thread(self._read_audio, request.audio)
        evidence = list(request.segments)
        excluded = {e.segment.segment_id: e.exclusion for e in evidence if e.exclusion}
        labels = await asyncio.to_thread(
            label_segments, evidence, pcm, rate, config, self.backend, excluded, self.model_names
        )
        span = span_name([e.segment for e in evidence])
        key = object_key(request.video_id, "labeler", config_digest(config), f"labels-{span}.json")
        doc = labels_document(request.video_id, config, labels)
        ref = await asyncio.to_thread(self.ctx.store.put_bytes, key, doc, "application/json")
        return labeler_pb2.LabelSegmentsResponse(labels=labels, labels_doc=ref)

    def _read_audio(self, audio: common_pb2.ObjectRef):
        with self.ctx.copies.local_copy(audio) as wav:
            return read_pcm(wav)

    async def on_event(self, subject: str, event, config: LabelerConfig) -> Output | None:
        joined = await join(self.ctx.store, "vision" if subject == VISION_ANALYZED else "asr", event)
        if joined is None:
            return None  # the other half labels the video when it arrives
        vision, asr = joined
        envelope = vision.envelope
        # the speech-emotion model hears the source's own rate where the audio stage kept it
        audio = envelope.source_audio if envelope.source_audio.key else envelope.audio
        request = labeler_pb2.LabelSegmentsRequest(
            audio=audio, video_id=envelope.video_id, segments=evidence_of(vision, asr)
        )
        response = await self.run(request, config)
        labels = response.labels
        out = forward(
            vision,
            events_pb2.SegmentsLabeled,
            documents={**asr.envelope.documents, "labeler": response.labels_doc},
            segments=vision.segments,
            vision=vision.vision,
            transcripts=asr.transcripts,
            labels=labels,
        )
        kept = sum(x.label.kept for x in labels)
        return Output(
            [(SEGMENTS_LABELED, out)], reason=f"{kept} of {len(labels)} kept", items=kept, not_kept=not_kept(labels)
        )
