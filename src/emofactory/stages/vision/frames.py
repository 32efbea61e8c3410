"""Frames from the speech segments only, at a low rate, from one forward decode of the video.

Each segment is sampled on a grid centred in it (`fps` frames per second, at least one), plus its
exact midpoint for the representative frame. Segments close to one another form a span, which
decode.py decodes; the same pass gives the active-speaker check its denser gray frames of the span
(a GrayTrack)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Sample:
    segment: int  # index into the segments
    time_s: float
    midpoint: bool  # the representative frame (not a detection sample unless also on the grid)
    grid: bool


def segment_samples(index: int, start_s: float, end_s: float, fps: float) -> list[Sample]:
    duration = end_s - start_s
    count = max(1, math.floor(duration * fps + 1e-9))
    first = start_s + (duration - (count - 1) / fps) / 2
    times = [round(first + k / fps, 6) for k in range(count)]
    mid = round((start_s + end_s) / 2, 6)
    samples = [Sample(index, t, midpoint=abs(t - mid) < 1e-6, grid=True) for t in times]
    if not any(s.midpoint for s in samples):
        samples.append(Sample(index, mid, midpoint=True, grid=False))
    return sorted(samples, key=lambda s: s.time_s)


SLACK_S = 1e-3


def plan_spans(
    segments: Sequence[tuple[float, float]], fps: float, merge_gap_s: float, max_span_s: float
) -> list[list[Sample]]:
    """Samples grouped into decode spans: consecutive segments share a span while the gap between
    them is under merge_gap_s and the span stays under max_span_s."""
    spans: list[list[Sample]] = []
    span_start = span_end = -math.inf
    for index, (start, end) in sorted(enumerate(segments), key=lambda item: item[1]):
        samples = segment_samples(index, start, end, fps)
        close = start - span_end < merge_gap_s and end - span_start <= max_span_s
        if spans and close:
            spans[-1].extend(samples)
            span_end = max(span_end, end)
        else:
            spans.append(samples)
            span_start, span_end = start, end
    return [sorted(span, key=lambda s: s.time_s) for span in spans]


@dataclass
class GrayTrack:
    """Frames of [start_s, end_s) decoded beside a span's samples: gray, at `fps`, scaled to `size`
    (width, height). decode_span fills in `frames` [T, H, W], frame k being at origin_s + k / fps."""

    fps: float
    size: tuple[int, int]
    start_s: float
    end_s: float
    origin_s: float = 0.0
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.uint8))

    def times(self) -> np.ndarray:
        return self.origin_s + np.arange(len(self.frames)) / self.fps
