"""Frames from the speech segments only, at a low rate, from as few FFmpeg decodes as possible.

Each segment is sampled on a grid centred in it (`fps` frames per second, at least one), plus its
exact midpoint for the representative frame. Segments close to one another share one decode of
their span (input seeking, so nothing before the span is decoded); FFmpeg's `select` filter keeps
only the frame nearest each sample time and `showinfo` reports that frame's time. Frames come out
as RGB at the source's display size. The same run can give the active-speaker check its denser
gray frames of the span (a GrayTrack), so that no frame is decoded twice."""

from __future__ import annotations

import math
import os
import queue
import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from emofactory.core.errors import PermanentError


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

# FFmpeg's expression parser nests each "+", so one select expression takes a bounded number of terms.
MAX_SEGMENTS_PER_SPAN = 24


def plan_spans(
    segments: Sequence[tuple[float, float]], fps: float, merge_gap_s: float, max_span_s: float
) -> list[list[Sample]]:
    """Samples grouped into decode spans: consecutive segments share a span while the gap between
    them is under merge_gap_s and the span stays under max_span_s (and MAX_SEGMENTS_PER_SPAN)."""
    spans: list[list[Sample]] = []
    span_start = span_end = -math.inf
    members = 0
    for index, (start, end) in sorted(enumerate(segments), key=lambda item: item[1]):
        samples = segment_samples(index, start, end, fps)
        close = start - span_end < merge_gap_s and end - span_start <= max_span_s
        if spans and close and members < MAX_SEGMENTS_PER_SPAN:
            spans[-1].extend(samples)
            span_end = max(span_end, end)
            members += 1
        else:
            spans.append(samples)
            span_start, span_end, members = start, end, 1
    return [sorted(span, key=lambda s: s.time_s) for span in spans]


def select_expression(samples: Sequence[Sample], origin: float, fps: float, half: float) -> str:
    """Keeps the frames within `half` of a sample time: per segment, its grid (two terms whatever
    its length) and its midpoint when that is off the grid."""
    terms = []
    for segment in sorted({s.segment for s in samples}):
        grid = [s.time_s - origin for s in samples if s.segment == segment and s.grid]
        first, last = grid[0], grid[-1]
        on_grid = f"lte(abs(t-{first:.6f}-round((t-{first:.6f})*{fps:g})/{fps:g}),{half:.6f})"
        terms.append(f"between(t,{first - half:.6f},{last + half:.6f})*{on_grid}")
        terms += [
            f"between(t,{s.time_s - origin - half:.6f},{s.time_s - origin + half:.6f})"
            for s in samples
            if s.segment == segment and not s.grid
        ]
    return "+".join(terms)


_PTS = re.compile(rb"\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:\s*(-?[\d.]+)")


def _read_times(stream, out: queue.Queue) -> None:
    tail: list[bytes] = []
    for line in stream:
        match = _PTS.search(line)
        if match:
            out.put(float(match.group(1)))
        elif line.strip():
            tail = (tail + [line.strip()])[-3:]
    out.put(b" | ".join(tail).decode(errors="replace"))


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


def _decode_command(video: str, origin: float, length: float, windows: str, gray: GrayTrack | None, fd: int):
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info"]
    command += ["-ss", f"{origin:.6f}", "-t", f"{length:.6f}", "-i", video, "-an", "-sn"]
    samples = f"select='{windows}',showinfo"
    rgb = ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    if gray is None:
        return [*command, "-vf", samples, *rgb]
    width, height = gray.size
    graph = f"[0:v]split[a][b];[a]{samples}[rgb];[b]fps={gray.fps:g},scale={width}:{height},format=gray[gray]"
    return [*command, "-filter_complex", graph, "-map", "[rgb]", *rgb, "-map", "[gray]", "-f", "rawvideo", f"pipe:{fd}"]


def _read_all(fd: int, into: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as stream:
        into.append(stream.read())


def decode_span(
    video: str,
    samples: Sequence[Sample],
    fps: float,
    width: int,
    height: int,
    source_fps: float,
    gray: GrayTrack | None = None,
) -> Iterator[tuple[Sample, np.ndarray]]:
    """(sample, RGB frame) for every sample of one span, in time order; one frame may serve several.
    With `gray`, the same decode also fills in its frames (once the iteration is over)."""
    # A sample time halfway between two frames is within half a frame of both only up to rounding
    # (FFmpeg's and ours): without the slack, both were dropped and the sample went missing.
    half = 0.5 / (source_fps if source_fps > 0 else 25.0) + SLACK_S
    origin = max(0.0, samples[0].time_s - 2 * half)
    end = samples[-1].time_s + 2 * half
    if gray is not None:
        origin, end = max(0.0, min(origin, gray.start_s)), max(end, gray.end_s)
    windows = select_expression(samples, origin, fps, half)
    gray_fd, gray_out, gray_data = (*os.pipe(), []) if gray is not None else (-1, -1, [])
    command = _decode_command(video, origin, end - origin, windows, gray, gray_out)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=() if gray is None else (gray_out,)
    )
    times: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=_read_times, args=(proc.stderr, times), daemon=True)]
    if gray is not None:
        os.close(gray_out)  # FFmpeg holds the write end; the reader sees the end of it when FFmpeg exits
        readers.append(threading.Thread(target=_read_all, args=(gray_fd, gray_data), daemon=True))
    for reader in readers:
        reader.start()
    frame_bytes = width * height * 3
    pending = list(samples)
    try:
        while pending:
            data = proc.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            t = times.get(timeout=60)
            if isinstance(t, str):
                break
            frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
            served = [s for s in pending if abs(s.time_s - origin - t) <= half]
            pending = [s for s in pending if s not in served and s.time_s - origin > t]
            for sample in served:
                yield sample, frame
        proc.stdout.read()  # let FFmpeg finish writing: closing the pipe early would fail it
    finally:
        proc.stdout.close()
        code = proc.wait()
        for reader in readers:
            reader.join(timeout=5)
    if code != 0 and pending:
        reason = ""
        while not times.empty():
            item = times.get()
            reason = item if isinstance(item, str) else reason
        raise PermanentError(f"could not decode video frames at {origin:.2f} s: {reason or f'ffmpeg exit {code}'}")
    if gray is not None and gray_data:
        width, height = gray.size
        whole = len(gray_data[0]) // (width * height)
        gray.origin_s = origin
        gray.frames = np.frombuffer(gray_data[0][: whole * width * height], np.uint8).reshape(whole, height, width)
