"""The vision stage on a local video file: sample frames from the speech segments, find faces in
batches, take the active speaker's face, run facial emotion on it, and sum it up per segment."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from emofactory.core.backend import ModelBackend
from emofactory.core.emotions import majority_vote
from emofactory.stages.vision.config import VisionConfig
from emofactory.stages.vision.faces import active_index, downscale, square_crop
from emofactory.stages.vision.frames import Sample, plan_spans, segment_samples
from emofactory.stages.vision.speaker import CHECK_SPAN_S, check_span, checking, gray_track
from emofactory.v1 import common_pb2

FER_MODEL = "facial_emotion"  # the backend's name for it
# The speaker is looked for among this many of a frame's largest faces (the rest of a crowd is not
# cropped nor given to the facial-emotion model).
MAX_FACES = 4


@dataclass
class Face:
    box: np.ndarray  # [x1, y1, x2, y2, score] in original pixels
    landmarks: np.ndarray | None  # five points [5, 2] (eyes, nose, mouth corners), original pixels
    crop: np.ndarray  # crop_size x crop_size RGB
    probs: np.ndarray | None = None  # canonical facial-emotion probabilities


@dataclass
class FrameFaces:
    """A detection frame: its confident faces, and which of them is the speaker's (the largest, until
    the active-speaker check finds another one speaking; None: no face kept)."""

    time_s: float
    faces: int  # confident faces in the frame
    found: list[Face] = field(default_factory=list)  # the faces the speaker is among
    active: int | None = None

    @property
    def box(self) -> np.ndarray | None:
        return None if self.active is None else self.found[self.active].box

    @property
    def landmarks(self) -> np.ndarray | None:
        return None if self.active is None else self.found[self.active].landmarks

    @property
    def probs(self) -> np.ndarray | None:
        return None if self.active is None else self.found[self.active].probs

    @property
    def crop(self) -> np.ndarray | None:
        return None if self.active is None else self.found[self.active].crop


@dataclass
class SegmentFaces:
    segment: common_pb2.Segment
    samples: int  # grid samples asked for
    frames: list[FrameFaces] = field(default_factory=list)
    midpoint_jpeg: bytes = b""
    speaker_sync: float | None = None  # the active-speaker check's score; None: not checked

    @property
    def face_frames(self) -> list[FrameFaces]:
        return [f for f in self.frames if f.box is not None]


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=quality)
    return out.getvalue()


class _Batcher:
    """Collects sampled frames and runs detection and FER a batch at a time."""

    def __init__(self, results: list[SegmentFaces], config: VisionConfig, backend: ModelBackend):
        self.results, self.config, self.backend = results, config, backend
        self.pending: list[tuple[Sample, np.ndarray]] = []

    def _faces(self, sample: Sample, frame: np.ndarray, boxes, scores, points, to_original) -> FrameFaces:
        """The frame's confident faces (all of them: the speaker check may find that a smaller one
        speaks), the largest active; none where strict_single_face drops the frame."""
        confident = np.flatnonzero(scores >= self.config.face_confidence)
        faces = FrameFaces(sample.time_s, len(confident))
        if active_index(boxes, scores, self.config.face_confidence, self.config.strict_single_face) is None:
            return faces
        areas = (boxes[confident, 2] - boxes[confident, 0]) * (boxes[confident, 3] - boxes[confident, 1])
        confident = confident[np.argsort(-areas, kind="stable")][:MAX_FACES]
        for i in confident:
            box = np.append(boxes[i], scores[i]).astype(np.float32)
            marks = None if points is None else points[i] * to_original[:2]
            crop = square_crop(frame, box, self.config.face_margin, self.config.crop_size)
            faces.found.append(Face(box, marks, crop))
        faces.active = 0  # the largest
        return faces

    def add(self, sample: Sample, frame: np.ndarray) -> None:
        self.pending.append((sample, frame))
        if len(self.pending) >= self.config.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        small = np.stack([downscale(frame, self.config.scale) for _, frame in batch])
        found = self.backend.infer("face_detector", {"images": small})
        height, width = batch[0][1].shape[:2]
        to_original = np.array([width / small.shape[2], height / small.shape[1]] * 2, np.float32)
        frames = []
        # A face detector without landmarks (an older model contract) leaves the speaker check nothing to do.
        landmarks = found.get("landmarks", [None] * len(batch))
        for (sample, frame), boxes, scores, points in zip(batch, found["boxes"], found["scores"], landmarks):
            frames.append((sample, self._faces(sample, frame, boxes * to_original, scores, points, to_original)))
        faces = [face for _, f in frames for face in f.found]
        if faces:
            probs = self.backend.infer(FER_MODEL, {"faces": np.stack([face.crop for face in faces])})
            for face, p in zip(faces, probs["probabilities"]):
                face.probs = p
        for sample, f in frames:
            self.results[sample.segment].frames.append(f)


def analyze_video(
    video: str,
    media: common_pb2.MediaInfo,
    segments: Sequence[common_pb2.Segment],
    config: VisionConfig,
    backend: ModelBackend,
) -> list[SegmentFaces]:
    """Per segment: its sampled frames with faces and emotions, its midpoint JPEG and whether its
    face speaks (speaker.py)."""
    spans = [(s.start_s, s.end_s) for s in segments]
    results = [
        SegmentFaces(s, sum(x.grid for x in segment_samples(i, s.start_s, s.end_s, config.fps)))
        for i, s in enumerate(segments)
    ]
    batcher = _Batcher(results, config, backend)
    max_span_s = min(config.max_span_s, CHECK_SPAN_S) if checking(media, config) else config.max_span_s
    from emofactory.stages.vision.decode import SourceFrames, decode_span  # PyAV: in vision's image only

    with SourceFrames(video) as source:
        for span in plan_spans(spans, config.fps, config.merge_gap_s, max_span_s):
            members = [results[i] for i in sorted({s.segment for s in span})]
            track = gray_track([r.segment for r in members], media, config)
            for sample, frame in decode_span(source, span, media.fps, track):
                if sample.midpoint:
                    results[sample.segment].midpoint_jpeg = jpeg(frame)
                if sample.grid:
                    batcher.add(sample, frame)
            if track is not None:
                batcher.flush()  # the span's faces, before its gray frames go
                check_span(video, media, members, track, config)
    batcher.flush()
    for result in results:
        result.frames.sort(key=lambda f: f.time_s)
    return results


def sub_votes(result: SegmentFaces, window_s: float) -> list[tuple[float, float, int, int]]:
    """(start, end, face frames, canonical index or -1) per equal part no longer than window_s."""
    start, end = result.segment.start_s, result.segment.end_s
    parts = max(1, math.ceil((end - start) / window_s - 1e-9))
    edges = np.linspace(start, end, parts + 1)
    votes = []
    for a, b in zip(edges[:-1], edges[1:]):
        inside = [f.probs for f in result.face_frames if a <= f.time_s < b or (b == end and f.time_s == end)]
        votes.append((float(a), float(b), len(inside), majority_vote(np.array(inside))))
    return votes


def segment_flags(result: SegmentFaces, config: VisionConfig) -> list[str]:
    if result.samples == 0:
        return ["no_video"]  # the source has no picture: nothing was sampled
    faces = len(result.face_frames)
    flags = []
    if faces == 0:
        flags.append("no_face")
    elif faces < config.min_face_frames:
        flags.append("few_face_frames")
    if len(result.frames) < result.samples:
        flags.append("missing_frames")
    if result.speaker_sync is not None and result.speaker_sync < config.min_speaker_sync:
        flags.append("off_screen_speaker")
    return flags


def face_grid(crops: list[np.ndarray], columns: int = 10) -> np.ndarray:
    """The crops tiled row by row, `columns` per row (time order)."""
    size = crops[0].shape[0]
    rows = math.ceil(len(crops) / columns)
    grid = np.zeros((rows * size, min(columns, len(crops)) * size, 3), np.uint8)
    for i, crop in enumerate(crops):
        r, c = divmod(i, columns)
        grid[r * size : (r + 1) * size, c * size : (c + 1) * size] = crop
    return grid
