"""The vision stage's decoding, by PyAV in process (FFmpeg's libraries; only the vision service's image
holds them, so the stage imports this where it decodes). The spans of a request are decoded in time
order in one pass (SourceFrames): a span that starts where the last one stopped is decoded on from
there, a later one from a seek to the keyframe before it, so no frame is decoded twice. Of a span's
frames, only the one nearest each sample time is converted, to RGB at the source's display size
(turned upright as its display matrix says)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from emofactory.core.errors import PermanentError
from emofactory.core.video import decode_from, quarter_turns, seek_before, timeline_start
from emofactory.stages.vision.frames import SLACK_S, GrayTrack, Sample
from emofactory.stages.vision.speaker import RATE

# A span that starts at most this far after the last decoded frame is decoded on to it; further on,
# a seek (back to the keyframe before it) costs less than decoding the gap.
SEEK_S = 5.0
# Decoded frames kept for a span that starts before the last one ended (the check's context around
# its segments), up to KEEP_BYTES of them (a 4K frame is 12 MB); an older start is a seek.
KEEP_S, KEEP_BYTES = 2.0, 256 << 20


class SourceFrames:
    """A video's frames in time order (seconds from the file's start) for spans asked for in time
    order, each frame decoded once: see SEEK_S and KEEP_S. Use as a context manager."""

    def __init__(self, video: str):
        try:
            self.source = av.open(video)
            self.stream = self.source.streams.video[0]
        except (av.FFmpegError, IndexError) as exc:
            raise PermanentError(f"could not decode video frames: {exc}") from exc
        self.offset = timeline_start(self.source)
        self.recent: deque[tuple[float, av.VideoFrame]] = deque()
        self.decoded: Iterator | None = None
        self.scaler = VideoReformatter()  # one for the video: frame.reformat makes one per frame

    def __enter__(self) -> SourceFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.source.close()

    def frames(self, from_s: float) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time, frame) from before `from_s` on (the caller skips what it does not need), until the
        caller stops or the video ends."""
        last = self.recent[-1][0] if self.recent else -math.inf
        if self.decoded is None or not self.recent or from_s < self.recent[0][0] or from_s > last + SEEK_S:
            self.recent.clear()
            self.decoded = decode_from(self.source, [self.stream], self.offset + from_s)
        yield from list(self.recent)
        for frame in self.decoded:
            if frame.time is None:
                continue
            item = (float(frame.time) - self.offset, frame)
            self.recent.append(item)
            frame_bytes = frame.width * frame.height * 3 // 2
            while self.recent[0][0] < item[0] - KEEP_S or len(self.recent) * frame_bytes > KEEP_BYTES:
                self.recent.popleft()
            yield item

    def end_s(self) -> float:
        """Where the video stream ends, as its header says (0: not said)."""
        stream = self.stream
        if not stream.duration:
            return 0.0
        return float(((stream.start_time or 0) + stream.duration) * stream.time_base) - self.offset

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return self._upright(self.scaler.reformat(frame, format="rgb24", threads=1).to_ndarray(), frame)

    def gray(self, frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
        """The frame in gray at `size` (width, height) as displayed (FFmpeg's scale filter's bicubic)."""
        width, height = size[::-1] if quarter_turns(frame) % 2 else size
        out = self.scaler.reformat(frame, width, height, "gray", interpolation=Interpolation.BICUBIC, threads=1)
        return self._upright(out.to_ndarray(), frame)

    def _upright(self, image: np.ndarray, frame: av.VideoFrame) -> np.ndarray:
        """Turned as the display matrix says, as FFmpeg's autorotate and the catalog's clips do."""
        turns = quarter_turns(frame)
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def decode_span(
    source: SourceFrames,
    samples: Sequence[Sample],
    source_fps: float,
    gray: GrayTrack | None = None,
) -> Iterator[tuple[Sample, np.ndarray]]:
    """(sample, RGB frame) for every sample of one span, in time order: the frame nearest it (one
    frame may serve several). With `gray`, the same decode also fills in its frames (once the
    iteration is over)."""
    # A sample time halfway between two frames is within half a frame of both only up to rounding:
    # the slack keeps it from falling between them.
    half = 0.5 / (source_fps if source_fps > 0 else 25.0) + SLACK_S
    origin = max(0.0, samples[0].time_s - 2 * half)
    end = samples[-1].time_s + 2 * half
    if gray is not None:
        origin, end = max(0.0, min(origin, gray.start_s)), max(end, gray.end_s)
    pending, ticks, last_time, previous = list(samples), [], -math.inf, None
    try:
        for time_s, frame in source.frames(origin):
            if time_s < origin - half:
                continue
            if gray is not None:
                _tick(gray, ticks, origin, end, previous, source, before_s=time_s)
            last_time, previous = time_s, frame
            served = [s for s in pending if abs(s.time_s - time_s) <= half]
            pending = [s for s in pending if s not in served and s.time_s > time_s]
            if served:
                rgb = source.rgb(frame)
                for sample in served:
                    yield sample, rgb
            if time_s >= end and not pending:
                break
    except av.FFmpegError as exc:
        if pending:
            raise PermanentError(f"could not decode video frames at {origin:.2f} s: {exc}") from exc
    if pending and pending[0].time_s < source.end_s() - half:
        # the picture stops before its own stream's length (not a shorter picture than sound): a
        # truncated or corrupt file
        raise PermanentError(f"could not decode video frames at {origin:.2f} s: no frame after {last_time:.2f} s")
    if gray is not None:
        _tick(gray, ticks, origin, end, previous, source, before_s=last_time + 2 * half)  # the last frame's ticks
        width, height = gray.size
        gray.origin_s = origin
        gray.frames = np.stack(ticks) if ticks else np.zeros((0, height, width), np.uint8)


def _tick(
    gray: GrayTrack, ticks: list, origin: float, end: float, frame, source: SourceFrames, before_s: float
) -> None:
    """Gives `frame` (the last one before `before_s`) the gray ticks due by then. Tick k (at origin + k /
    fps) takes the last frame before origin + (k + 1/2) / fps, as FFmpeg's fps filter does: up to half
    a tick late, which centres a frame-to-frame change (the mouth's motion from tick k - 1 to k) on
    tick k, where the speech's energy is taken; the frame nearest each tick scored worse
    (bench.active_speaker: precision 0.83, recall 0.50, against 0.88 / 0.58)."""
    count = (end - origin) * gray.fps
    while frame is not None and len(ticks) < count and origin + (len(ticks) + 0.5) / gray.fps <= before_s:
        ticks.append(source.gray(frame, gray.size))


def decode_audio(video: str, start_s: float, end_s: float) -> np.ndarray | None:
    """Mono float audio at 16 kHz of [start_s, end_s), or None where the file has no audio or it
    cannot be decoded (the segment is then not checked)."""
    try:
        with av.open(video) as source:
            if not source.streams.audio:
                return None
            stream, offset = source.streams.audio[0], timeline_start(source)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            seek_before(source, offset + start_s)
            parts, first_s = [], None
            for frame in source.decode(stream):
                if frame.time is None:
                    continue
                first_s = float(frame.time) - offset if first_s is None else first_s
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
                if float(frame.time) - offset >= end_s:
                    break
    except av.FFmpegError:
        return None
    if not parts:
        return None
    pcm = np.concatenate(parts)
    skip = max(0, round((start_s - first_s) * RATE))
    return pcm[skip : skip + round((end_s - start_s) * RATE)]
