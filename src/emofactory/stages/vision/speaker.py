"""Does the visible face speak? An audio-visual active-speaker check per segment: the motion of the
active face's mouth, frame to frame, against the loudness of the segment's speech.

The mouth is found by MTCNN's landmarks (its two mouth corners) on the detection frames; between
them, the denser frames of this check take the corners of the nearest detection frame (a talking
head moves little in half a second). The vision stage's decode of each span also gives its frames at
`speaker_fps`, in gray at the detector's scale (frames.GrayTrack); the span's audio is decoded
beside them (PyAV); the score is the Pearson correlation of mouth
motion and log energy at the same instants. (Taking the best correlation within ±0.2 s, for speech
that leads or lags the lips, measured worse: the best of several lags lifts the faces that do not
speak more than the ones that do; bench.active_speaker, README.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from emofactory.stages.vision.config import VisionConfig
from emofactory.stages.vision.frames import GrayTrack
from emofactory.v1 import common_pb2

RATE = 16000
# Mouth crops are resized to this (width, height) before frames are compared.
MOUTH_SIZE = (32, 24)
# The check's frames are at most this high (the mouth stays some 20 pixels wide in a close-up), and
# the vision stage's spans at most this long while it checks, so that one span's frames stay within
# some 70 MB.
CHECK_HEIGHT = 360
CHECK_SPAN_S = 30.0
# Each segment is checked with this much of the pauses either side: a speaker's mouth starts and stops
# with the voice, which a segment of speech alone barely shows.
CONTEXT_S = 0.5
# Faces of consecutive detection frames are one person's where their boxes overlap at least this much.
TRACK_IOU = 0.3


def mouth_box(points: np.ndarray, scale: np.ndarray) -> tuple[int, int, int, int]:
    """The region around the mouth from five landmarks (original pixels), in a frame scaled by
    `scale` (x, y): 1.5 mouth widths wide, from 0.45 of one above the corners to 0.75 below (the jaw
    opens downwards)."""
    left, right = points[3] * scale, points[4] * scale
    cx, cy = (left + right) / 2
    width = max(float(np.linalg.norm(right - left)), 2.0)
    return round(cx - 0.75 * width), round(cy - 0.45 * width), round(cx + 0.75 * width), round(cy + 0.75 * width)


def mouth_motion(frames: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """Mean absolute change of the mouth crop from each frame to the next (the first repeats the second)."""
    crops = [Image.fromarray(f).crop(b).resize(MOUTH_SIZE, Image.BILINEAR) for f, b in zip(frames, boxes)]
    crops = np.stack([np.asarray(c, np.float32) for c in crops])
    motion = np.abs(np.diff(crops, axis=0)).mean(axis=(1, 2))
    return np.concatenate([motion[:1], motion])


def log_energy(pcm: np.ndarray, times: np.ndarray, window_s: float) -> np.ndarray:
    """log10 RMS of the audio in a window around each time (seconds from the pcm's start)."""
    half = max(1, round(window_s * RATE / 2))
    out = np.empty(len(times), np.float32)
    for i, t in enumerate(times):
        at = round(t * RATE)
        part = pcm[max(0, at - half) : at + half + 1]
        out[i] = np.log10(np.sqrt(np.mean(part * part)) + 1e-4) if len(part) else -4.0
    return out


def sync_score(motion: np.ndarray, energy: np.ndarray) -> float | None:
    """The Pearson correlation of the two series; None where either is flat or too short."""
    if len(motion) <= 3 or motion.std() <= 1e-6 or energy.std() <= 1e-6:
        return None
    return float(np.corrcoef(motion, energy)[0, 1])


def checking(media: common_pb2.MediaInfo, config: VisionConfig) -> bool:
    return media.has_audio and config.speaker_fps > 0


def gray_track(segments: Sequence, media: common_pb2.MediaInfo, config: VisionConfig) -> GrayTrack | None:
    """What the check needs decoded of a span with these segments; None where nothing is to check."""
    spans = [(s.start_s, s.end_s) for s in segments if s.end_s - s.start_s >= config.speaker_min_s]
    if not spans or not checking(media, config):
        return None
    ratio = min(config.scale, CHECK_HEIGHT / media.height)
    size = (max(2, round(media.width * ratio / 2) * 2), max(2, round(media.height * ratio / 2) * 2))
    start = max(0.0, min(a for a, _ in spans) - CONTEXT_S)
    return GrayTrack(config.speaker_fps, size, start, max(b for _, b in spans) + CONTEXT_S)


@dataclass(frozen=True)
class _Span:
    """One decoded span's gray frames at their times, its audio from start_s, and the scale from
    original pixels to the frames'."""

    frames: np.ndarray
    times: np.ndarray
    pcm: np.ndarray
    start_s: float
    scale: np.ndarray
    fps: float

    def sync(self, marks: dict[float, np.ndarray], seen: np.ndarray, inside: np.ndarray) -> float | None:
        """The score of one face track (its landmarks by detection frame time): over the `inside`
        frames whose nearest detection frame with a face (`seen`) holds the track's face."""
        nearest = seen[np.abs(seen[None, :] - self.times[inside, None]).argmin(axis=1)]
        keep = np.array([t in marks for t in nearest], bool)
        if keep.sum() < 4:
            return None
        boxes = [mouth_box(marks[t], self.scale) for t in nearest[keep]]
        motion = mouth_motion(self.frames[inside[keep]], boxes)
        energy = log_energy(self.pcm, self.times[inside[keep]] - self.start_s, 1 / self.fps)
        return sync_score(motion, energy)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def face_tracks(frames: Sequence) -> list[list[tuple]]:
    """The faces of a segment's detection frames linked into tracks, one person each: (frame, index
    in frame.found) pairs in time order. A face joins the track whose last face it overlaps most
    (IoU at least TRACK_IOU, one face per track and frame), else it starts one."""
    tracks: list[list[tuple]] = []
    for frame in sorted(frames, key=lambda f: f.time_s):
        taken: set[int] = set()
        for k, face in enumerate(frame.found):
            overlaps = [
                (iou(track[-1][0].found[track[-1][1]].box, face.box), t)
                for t, track in enumerate(tracks)
                if t not in taken
            ]
            best, t = max(overlaps, default=(0.0, -1))
            if best < TRACK_IOU:
                t = len(tracks)
                tracks.append([])
            tracks[t].append((frame, k))
            taken.add(t)
    return tracks


def _landmarks(track: list[tuple]) -> dict[float, np.ndarray]:
    faces = ((frame.time_s, frame.found[k].landmarks) for frame, k in track)
    return {t: marks for t, marks in faces if marks is not None}


def check_segment(result, span: _Span, config: VisionConfig) -> None:
    """Scores the segment's face tracks and sets its speaker_sync: the largest face's (per frame), or,
    with pick_speaker, another face's that moves with the speech by more than pick_margin more; that
    face then becomes the segment's active face (frames without it keep none)."""
    start, end = result.segment.start_s - CONTEXT_S, result.segment.end_s + CONTEXT_S
    inside = np.flatnonzero((span.times >= start) & (span.times < end))
    with_face = [f for f in result.frames if f.found]
    if len(inside) < 4 or not with_face:
        return
    seen = np.array([f.time_s for f in with_face])
    tracks = face_tracks(with_face)
    largest = max(tracks, key=lambda track: sum(frame.active == k for frame, k in track))
    largest_sync = span.sync(_landmarks(largest), seen, inside)
    result.speaker_sync = largest_sync
    if not config.pick_speaker or len(tracks) == 1:
        return
    others = [t for t in tracks if t is not largest and 2 * len(t) >= len(with_face)]
    scored = [(sync, t) for t in others if (sync := span.sync(_landmarks(t), seen, inside)) is not None]
    if not scored:
        return
    best_sync, best = max(scored, key=lambda item: item[0])
    if largest_sync is None or best_sync > largest_sync + config.pick_margin:
        result.speaker_sync = best_sync
        chosen = {id(frame): k for frame, k in best}
        for frame in result.frames:
            frame.active = chosen.get(id(frame))


def check_span(
    video: str, media: common_pb2.MediaInfo, results: Sequence, track: GrayTrack, config: VisionConfig
) -> None:
    """Sets `speaker_sync` of each result (analysis.SegmentFaces) of one decoded span with face frames
    and at least speaker_min_s of speech; the others keep None (not checked)."""
    long_enough = [r for r in results if r.segment.end_s - r.segment.start_s >= config.speaker_min_s]
    members = [r for r in long_enough if r.face_frames]
    if not members or len(track.frames) == 0:
        return
    from emofactory.stages.vision.decode import decode_audio  # PyAV: in the vision service's image only

    pcm = decode_audio(video, track.start_s, track.end_s)
    if pcm is None:
        return
    scale = np.array([track.size[0] / media.width, track.size[1] / media.height], np.float32)
    span = _Span(track.frames, track.times(), pcm, track.start_s, scale, track.fps)
    for result in members:
        check_segment(result, span, config)
