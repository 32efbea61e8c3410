"""Does the visible face speak? An audio-visual active-speaker check per segment: the motion of the
active face's mouth, frame to frame, against the loudness of the segment's speech.

The mouth is found by MTCNN's landmarks (its two mouth corners) on the detection frames; between
them, the denser frames of this check take the corners of the nearest detection frame (a talking
head moves little in half a second). The vision stage's decode of each span also gives its frames at
`speaker_fps`, in gray at the detector's scale (frames.GrayTrack); the span's audio is decoded
beside them; the score is the Pearson correlation of mouth
motion and log energy at the same instants. (Taking the best correlation within ±0.2 s, for speech
that leads or lags the lips, measured worse: the best of several lags lifts the faces that do not
speak more than the ones that do; bench.active_speaker, README.)"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

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


def decode_audio(video: str, start_s: float, end_s: float) -> np.ndarray | None:
    """Mono float audio at 16 kHz of [start_s, end_s), or None where the file has no audio."""
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start_s:.6f}", "-t", f"{end_s - start_s:.6f}",
        "-i", video, "-vn", "-sn", "-ac", "1", "-ar", str(RATE), "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True)
    if run.returncode != 0 or not run.stdout:
        return None
    return np.frombuffer(run.stdout, np.int16).astype(np.float32) / 32768.0


def gray_track(segments: Sequence, media: common_pb2.MediaInfo, config: VisionConfig) -> GrayTrack | None:
    """What the check needs decoded of a span with these segments; None where nothing is to check."""
    spans = [(s.start_s, s.end_s) for s in segments if s.end_s - s.start_s >= config.speaker_min_s]
    if not spans or not media.has_audio or config.speaker_fps <= 0:
        return None
    ratio = min(config.scale, CHECK_HEIGHT / media.height)
    size = (max(2, round(media.width * ratio / 2) * 2), max(2, round(media.height * ratio / 2) * 2))
    start = max(0.0, min(a for a, _ in spans) - CONTEXT_S)
    return GrayTrack(config.speaker_fps, size, start, max(b for _, b in spans) + CONTEXT_S)


def check_span(
    video: str, media: common_pb2.MediaInfo, results: Sequence, track: GrayTrack, config: VisionConfig
) -> None:
    """Sets `speaker_sync` of each result (analysis.SegmentFaces) of one decoded span with face frames
    and at least speaker_min_s of speech; the others keep None (not checked)."""
    long_enough = [r for r in results if r.segment.end_s - r.segment.start_s >= config.speaker_min_s]
    members = [r for r in long_enough if r.face_frames]
    if not members or len(track.frames) == 0:
        return
    pcm = decode_audio(video, track.start_s, track.end_s)
    if pcm is None:
        return
    scale = np.array([track.size[0] / media.width, track.size[1] / media.height], np.float32)
    times = track.times()
    for result in members:
        result.speaker_sync = _segment_sync(result, track.frames, times, pcm, track.start_s, scale, track.fps)


def _segment_sync(result, frames, times, pcm, start_s: float, scale: np.ndarray, fps: float) -> float | None:
    start, end = result.segment.start_s - CONTEXT_S, result.segment.end_s + CONTEXT_S
    inside = np.flatnonzero((times >= start) & (times < end))
    if len(inside) < 4:
        return None
    faces = [f for f in result.face_frames if f.landmarks is not None]
    if not faces:
        return None
    face_times = np.array([f.time_s for f in faces])
    nearest = [faces[int(np.argmin(np.abs(face_times - times[i])))] for i in inside]
    boxes = [mouth_box(f.landmarks, scale) for f in nearest]
    motion = mouth_motion(frames[inside], boxes)
    energy = log_energy(pcm, times[inside] - start_s, 1 / fps)
    return sync_score(motion, energy)
