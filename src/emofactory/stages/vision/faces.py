"""Per-frame face logic: which face is the active speaker, and the crops cut around it."""

from __future__ import annotations

import numpy as np
from PIL import Image


def active_index(boxes: np.ndarray, scores: np.ndarray, min_confidence: float, strict: bool) -> int | None:
    """Which of the frame's faces is the active speaker's, or None when the frame is not kept.
    Seed 000: the largest face speaks. Seed 002 (strict): a frame with more or fewer than one face is dropped."""
    sure = np.flatnonzero(scores >= min_confidence)
    if len(sure) == 0 or (strict and len(sure) != 1):
        return None
    areas = (boxes[sure, 2] - boxes[sure, 0]) * (boxes[sure, 3] - boxes[sure, 1])
    return int(sure[np.argmax(areas)])


def active_face(boxes: np.ndarray, scores: np.ndarray, min_confidence: float, strict: bool) -> np.ndarray | None:
    """[x1, y1, x2, y2, score] of the active speaker's face (see active_index), or None."""
    i = active_index(boxes, scores, min_confidence, strict)
    return None if i is None else np.append(boxes[i], scores[i]).astype(np.float32)


def square_crop(frame: np.ndarray, box: np.ndarray, margin: float, size: int) -> np.ndarray:
    """A size x size RGB crop of the square around the box's centre, grown by `margin`; parts
    outside the frame are black."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    region = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    crop = Image.fromarray(frame).crop(region)
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


def downscale(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR, reducing_gap=2.0))
