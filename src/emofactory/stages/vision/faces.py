"""Per-frame face logic: which face is the active speaker, and the crops cut around it."""

from __future__ import annotations

import numpy as np
from PIL import Image


def active_face(boxes: np.ndarray, scores: np.ndarray, min_confidence: float, strict: bool) -> np.ndarray | None:
    """[x1, y1, x2, y2, score] of the active speaker's face, or None when the frame is not kept.
    Seed 000: the largest face speaks. Seed 002 (strict): a frame with more or fewer than one face is dropped."""
    sure = scores >= min_confidence
    boxes, scores = boxes[sure], scores[sure]
    if len(boxes) == 0 or (strict and len(boxes) != 1):
        return None
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    i = int(np.argmax(areas))
    return np.append(boxes[i], scores[i]).astype(np.float32)


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
