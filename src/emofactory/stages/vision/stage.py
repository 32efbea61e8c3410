"""The vision stage: a stored video and its speech segments -> faces and facial emotion per segment;
the midpoint frames, face-crop grids and a JSON document stored under keys that carry the settings'
digest."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import numpy as np
from google.protobuf.json_format import MessageToDict

from emofactory.core.backend import ModelBackend
from emofactory.core.config import config_digest
from emofactory.core.emotions import emotion_enum, majority_vote, scores_message
from emofactory.core.events import SPEECH_SEGMENTED, VISION_ANALYZED, forward
from emofactory.core.media import check_segments, span_name
from emofactory.core.stage import Output, Rpc
from emofactory.core.store import check_ref, key_part, object_key
from emofactory.stages.base import ModelStage
from emofactory.stages.vision.analysis import (
    SegmentFaces,
    analyze_video,
    face_grid,
    jpeg,
    segment_flags,
    sub_votes,
)
from emofactory.stages.vision.config import VisionConfig, checked_options
from emofactory.v1 import common_pb2, events_pb2, vision_pb2


def summarize(result: SegmentFaces, config: VisionConfig, model: str = "") -> vision_pb2.SegmentVision:
    """One segment's faces summed up; `model` names the facial-emotion model in the scores."""
    faces = result.face_frames
    out = vision_pb2.SegmentVision(
        segment_id=result.segment.segment_id,
        frames=len(result.frames),
        face_frames=len(faces),
        face_ratio=len(faces) / len(result.frames) if result.frames else 0.0,
        flags=segment_flags(result, config),
    )
    if result.speaker_sync is not None:
        out.speaker_sync = result.speaker_sync
    if faces:
        boxes = np.stack([f.box for f in faces])
        x1, y1, x2, y2, score = np.median(boxes, axis=0)
        out.active_face.CopyFrom(common_pb2.FaceBox(x1=x1, y1=y1, x2=x2, y2=y2, confidence=boxes[:, 4].mean()))
        probs = np.stack([f.probs for f in faces])
        out.face.CopyFrom(scores_message(probs.mean(axis=0), model))
        out.vote = emotion_enum(majority_vote(probs))
    for start, end, count, vote in sub_votes(result, config.vote_window_s):
        out.sub_votes.add(start_s=start, end_s=end, face_frames=count, vote=emotion_enum(vote))
    return out


def _frame_record(frame) -> dict:
    record = {"t": round(frame.time_s, 3), "faces": frame.faces}
    if frame.box is not None:
        record["box"] = [round(float(v), 1) for v in frame.box[:4]]
        record["score"] = round(float(frame.box[4]), 4)
        record["probs"] = [round(float(p), 4) for p in frame.probs]
    if frame.landmarks is not None:
        record["landmarks"] = [[round(float(v), 1) for v in point] for point in frame.landmarks]
    return record


def vision_document(video_id: str, config: VisionConfig, results, summaries) -> bytes:
    doc = {
        "video_id": video_id,
        "config": dataclasses.asdict(config),
        "segments": [
            {
                **MessageToDict(summary, preserving_proto_field_name=True),
                "frame_records": [_frame_record(f) for f in r.frames],
            }
            for r, summary in zip(results, summaries)
        ],
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def _store_images(store, video_id: str, digest: str, results, summaries) -> None:
    for result, summary in zip(results, summaries):
        sid = result.segment.segment_id
        if result.midpoint_jpeg:
            key = object_key(video_id, "vision", digest, f"{sid}-frame.jpg")
            summary.frame.CopyFrom(store.put_bytes(key, result.midpoint_jpeg, "image/jpeg"))
        crops = [f.crop for f in result.face_frames]
        if crops:
            key = object_key(video_id, "vision", digest, f"{sid}-faces.jpg")
            summary.faces.CopyFrom(store.put_bytes(key, jpeg(face_grid(crops)), "image/jpeg"))


def _analyze_file(path: Path, segments, config: VisionConfig, backend: ModelBackend) -> list[SegmentFaces]:
    from emofactory.core.video import probe  # PyAV: in vision's image only (no ffprobe there)

    media = probe(path)
    if not media.has_video:
        return [SegmentFaces(s, samples=0) for s in segments]
    return analyze_video(str(path), media, segments, config, backend)


class VisionStage(ModelStage):
    name = "vision"
    consumes = {SPEECH_SEGMENTED: events_pb2.SpeechSegmented}
    produces = (VISION_ANALYZED,)
    config_type = VisionConfig
    rpc = Rpc(vision_pb2, "VisionService", "AnalyzeSegments")
    check = staticmethod(checked_options)

    def models_used(self) -> tuple[str, ...]:
        return ("face_detector", "facial_emotion")

    def validate(self, request: vision_pb2.AnalyzeSegmentsRequest) -> None:
        check_ref(request.video, "video", "the stored video to analyse")
        key_part(request.video_id, "video_id")
        check_segments(request.segments)

    async def run(
        self, request: vision_pb2.AnalyzeSegmentsRequest, config: VisionConfig
    ) -> vision_pb2.AnalyzeSegmentsResponse:
        store, video_id, digest = self.ctx.store, request.video_id, config_digest(config)
        results = await asyncio.to_thread(self._analyze, request.video, list(request.segments), config)
        summaries = [summarize(r, config, self.model_name("face")) for r in results]
        await asyncio.to_thread(_store_images, store, video_id, digest, results, summaries)
        doc = vision_document(video_id, config, results, summaries)
        key = object_key(video_id, "vision", digest, f"vision-{span_name(request.segments)}.json")
        ref = await asyncio.to_thread(store.put_bytes, key, doc, "application/json")
        return vision_pb2.AnalyzeSegmentsResponse(segments=summaries, vision_doc=ref)

    def _analyze(self, video: common_pb2.ObjectRef, segments, config: VisionConfig) -> list[SegmentFaces]:
        with self.ctx.copies.local_copy(video) as path:
            return _analyze_file(path, segments, config, self.backend)

    def request_of(self, event: events_pb2.SpeechSegmented) -> vision_pb2.AnalyzeSegmentsRequest:
        envelope = event.envelope
        return vision_pb2.AnalyzeSegmentsRequest(
            video=envelope.video, video_id=envelope.video_id, segments=event.segments
        )

    def output_of(self, event, response: vision_pb2.AnalyzeSegmentsResponse) -> Output:
        vision = response.segments
        out = forward(
            event,
            events_pb2.VisionAnalyzed,
            documents={"vision": response.vision_doc},
            segments=event.segments,
            vision=vision,
        )
        with_face = sum(v.face_frames > 0 for v in vision)
        return Output([(VISION_ANALYZED, out)], items=with_face, flagged=len(vision) - with_face)
