"""The vision stage on stored objects: fetch the video, analyse its segments, store the midpoint
frames, face-crop grids and a JSON document under keys that carry the settings' digest."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from google.protobuf.json_format import MessageToDict

from services.common.backend import ModelBackend
from services.common.config import config_digest
from services.common.emotions import emotion_enum, majority_vote, scores_message
from services.common.gen.emofactory.v1 import common_pb2, vision_pb2
from services.common.media import probe
from services.common.service import Runtime
from services.common.store import ObjectStore, object_key
from services.vision.config import VisionConfig
from services.vision.stage import FER_LABEL, SegmentFaces, analyze_video, face_grid, jpeg, segment_flags, sub_votes


def summarize(result: SegmentFaces, config: VisionConfig) -> vision_pb2.SegmentVision:
    faces = result.face_frames
    out = vision_pb2.SegmentVision(
        segment_id=result.segment.segment_id,
        frames=len(result.frames),
        face_frames=len(faces),
        face_ratio=len(faces) / len(result.frames) if result.frames else 0.0,
        flags=segment_flags(result, config),
    )
    if faces:
        boxes = np.stack([f.box for f in faces])
        x1, y1, x2, y2, score = np.median(boxes, axis=0)
        out.active_face.CopyFrom(common_pb2.FaceBox(x1=x1, y1=y1, x2=x2, y2=y2, confidence=boxes[:, 4].mean()))
        probs = np.stack([f.probs for f in faces])
        out.face.CopyFrom(scores_message(probs.mean(axis=0), FER_LABEL))
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


def _store_images(store: ObjectStore, video_id: str, digest: str, results, summaries) -> None:
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
    media = probe(path)
    if not media.has_video:
        return [SegmentFaces(s, samples=0) for s in segments]
    return analyze_video(str(path), media, segments, config, backend)


async def analyze_stored_video(
    rt: Runtime,
    backend: ModelBackend,
    video: common_pb2.ObjectRef,
    video_id: str,
    segments: Sequence[common_pb2.Segment],
    config: VisionConfig,
) -> tuple[list[vision_pb2.SegmentVision], common_pb2.ObjectRef]:
    digest = config_digest(config)
    with tempfile.TemporaryDirectory(dir=rt.work_dir) as tmp:
        path = await asyncio.to_thread(rt.store.get_file, video, Path(tmp) / "video")
        results = await asyncio.to_thread(_analyze_file, path, list(segments), config, backend)
    summaries = [summarize(r, config) for r in results]
    await asyncio.to_thread(_store_images, rt.store, video_id, digest, results, summaries)
    doc = vision_document(video_id, config, results, summaries)
    key = object_key(video_id, "vision", digest, "vision.json")
    ref = await asyncio.to_thread(rt.store.put_bytes, key, doc, "application/json")
    return summaries, ref
