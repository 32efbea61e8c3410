"""One decode, many clips: the source is decoded once from the first segment of a group to the last
(PyAV, FFmpeg's libraries in process), and every decoded frame and audio sample goes to the clip
whose span holds its time, each clip with its own x264 and AAC encoders. A clip therefore holds
exactly the frames of its span and the samples of its span, each encoded once: no pre-roll hidden
behind an edit list (which readers such as decord ignore), no decode per clip, and the silences
between clips are decoded but never encoded."""

from __future__ import annotations

import bisect
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from emofactory.core.errors import PermanentError
from emofactory.core.video import decode_from, timeline_start
from emofactory.stages.catalog.config import Encoding
from emofactory.v1 import common_pb2

VIDEO_TIME_BASE = Fraction(1, 90000)


class ClipWriter:
    """One clip's MP4: H.264 (yuv420p) from the frames it is given, AAC from the samples. The first
    frame is at time 0, the first sample too; the frame lies less than a frame after the span's start.
    Frames are turned upright as the source's display matrix says (`turns` quarter turns,
    counterclockwise, as FFmpeg's autorotate does), scaled and thinned as `encoding` says, and cropped
    by a pixel to even sizes."""

    def __init__(self, path: Path, span: tuple[float, float], video, audio, encoding: Encoding, turns: int = 0):
        self.path, (self.start_s, self.end_s), self.turns = path, span, turns
        self.out = av.open(str(path), "w", options={"movflags": "+faststart"})
        self.video = self.audio = None
        self.first_frame_s: float | None = None
        self.max_fps, self.frames = encoding.max_fps, 0
        # One scaler for the clip: frame.reformat makes a new one per frame (5x slower at 854x480).
        self.scaler = VideoReformatter()
        self.samples = 0
        if video is not None:
            width, height = video.codec_context.width, video.codec_context.height
            width, height = (height, width) if turns % 2 else (width, height)
            self.video = self.out.add_stream("libx264", rate=encoding.rate(video.average_rate))
            self.video.width, self.video.height = encoding.size(width, height)
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = VIDEO_TIME_BASE
            self.video.options = {"preset": encoding.preset, "crf": str(encoding.crf)}
            # Slice threads: the same bytes on every run, so a redelivered event rewrites identical clips
            # (x264's frame threads were 10 % faster here, but 5 of 11 clips differed between two runs).
            self.video.codec_context.thread_type = "SLICE"
        if audio is not None:
            self.audio = self.out.add_stream("aac", rate=audio.codec_context.sample_rate)
            self.audio.layout = audio.codec_context.layout
            self.audio.bit_rate = 128_000

    def add_frame(self, frame: av.VideoFrame, time_s: float) -> None:
        if self.first_frame_s is None:
            self.first_frame_s = time_s
        if self.max_fps:  # the first frame in each 1 / max_fps of the clip's time, the others dropped
            slot = math.floor((time_s - self.first_frame_s) * self.max_fps + 1e-6)
            if self.frames and slot < self.frames:
                return
            self.frames = slot + 1
        if self.turns:
            upright = np.rot90(frame.to_ndarray(format="rgb24"), self.turns)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(upright), format="rgb24")
        size = (self.video.width, self.video.height)
        if frame.format.name != "yuv420p" or (frame.width, frame.height) != size:
            frame = self.scaler.reformat(frame, *size, format="yuv420p", threads=1)  # a core per group
        frame.pts, frame.time_base = round((time_s - self.first_frame_s) / VIDEO_TIME_BASE), VIDEO_TIME_BASE
        self.out.mux(self.video.encode(frame))

    def add_samples(self, frame: av.AudioFrame, time_s: float) -> None:
        """The frame's samples that lie in the span (sample i at time_s + i / rate)."""
        rate = frame.sample_rate
        first = max(0, math.ceil((self.start_s - time_s) * rate - 1e-6))
        last = min(frame.samples, math.ceil((self.end_s - time_s) * rate - 1e-6))
        if last <= first:
            return
        if (first, last) != (0, frame.samples):
            planes = frame.to_ndarray()
            width = 1 if frame.format.is_planar else len(frame.layout.channels)
            part = planes[:, first * width : last * width]
            frame = av.AudioFrame.from_ndarray(part, format=frame.format.name, layout=frame.layout.name)
            frame.sample_rate = rate
        frame.pts, frame.time_base = self.samples, Fraction(1, rate)
        self.samples += last - first
        self.out.mux(self.audio.encode(frame))

    def close(self) -> Path:
        """Flushes the encoders and finishes the file (once)."""
        if self.out is not None:
            for stream in (self.video, self.audio):
                if stream is not None:
                    self.out.mux(stream.encode(None))
            self.out.close()
            self.out = None
        return self.path

    def abandon(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def cut_group(video: Path, group: list, out_dir: Path, encoding: Encoding, turns: int = 0) -> dict[str, Path]:
    """The group's clips (segments in time order), by segment id; `turns`: see ClipWriter."""
    end = max(s.end_s for s in group)
    clips: list[ClipWriter] = []
    try:
        with av.open(str(video)) as source:
            picture = source.streams.video[0] if source.streams.video else None
            sound = source.streams.audio[0] if source.streams.audio else None
            if picture is not None:
                picture.thread_type = "AUTO"
            for s in group:
                path = out_dir / f"{s.segment_id}.mp4"
                clips.append(ClipWriter(path, (s.start_s, s.end_s), picture, sound, encoding, turns))
            offset = timeline_start(source)  # segment times count from it (an MPEG-TS starts at ~1.4 s)
            streams = [x for x in (picture, sound) if x is not None]
            frames = decode_from(source, streams, offset + group[0].start_s)
            _route(frames, {x.type for x in streams}, clips, end, offset)
            return {s.segment_id: clip.close() for s, clip in zip(group, clips)}
    except (av.FFmpegError, ValueError) as exc:
        for clip in clips:
            clip.abandon()
        raise PermanentError(f"could not cut the clips {group[0].start_s:.2f}-{end:.2f} s: {exc}") from exc


def _route(frames, kinds: set[str], clips: list[ClipWriter], end: float, offset: float) -> None:
    """Hands each decoded frame to the clips whose span holds it (times less `offset`, the timeline's
    start), until every stream (of `kinds`: video, audio) is past `end`.
    A clip is finished as soon as every stream is past it, so a long group holds few encoders."""
    starts = [c.start_s for c in clips]
    past = dict.fromkeys(kinds, -math.inf)  # how far each stream has been decoded
    open_from = 0  # clips before this one are finished
    for frame in frames:
        if frame.time is None:
            continue
        time_s, sound = float(frame.time) - offset, isinstance(frame, av.AudioFrame)
        if sound and time_s < end:
            span_end = time_s + frame.samples / frame.sample_rate
            for clip in clips[open_from : bisect.bisect_left(starts, span_end)]:
                if clip.end_s > time_s:
                    clip.add_samples(frame, time_s)
        elif time_s < end:
            for clip in clips[open_from : bisect.bisect_right(starts, time_s)]:
                if clip.end_s > time_s:
                    clip.add_frame(frame, time_s)
        past["audio" if sound else "video"] = time_s
        while open_from < len(clips) and clips[open_from].end_s <= min(past.values()):
            clips[open_from].close()
            open_from += 1
        if open_from == len(clips):
            return


def reencode(path: Path, duration_s: float, encoding: Encoding) -> None:
    """A clip MP4 re-encoded in place as `encoding` says (a release's smaller clips)."""
    cut = path.with_name(f"{path.stem}.cut.mp4")
    path.rename(cut)
    try:
        cut_group(cut, [common_pb2.Segment(segment_id=path.stem, end_s=duration_s)], path.parent, encoding)
    finally:
        cut.unlink()
