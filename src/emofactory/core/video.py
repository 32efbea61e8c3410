"""PyAV (FFmpeg's libraries in process): what the stages that decode video share. Their images hold
FFmpeg's libraries (in PyAV's wheel) and not its command line, so they probe here, not with ffprobe
(core.media)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import av

from emofactory.core.errors import PermanentError
from emofactory.v1 import common_pb2


def seek_before(source, time_s: float, margin_s: float = 0.5) -> None:
    """Puts the demuxer at the last keyframe before `time_s - margin_s` (the margin: every stream's
    packets start at or before time_s). The offset is in av.time_base units (an int, 1e6 per second):
    dividing by it sought to 0, and every group decoded the video from its start (a 2.5 s clip at
    550 s of the bench video cost 8.9 CPU-s, 0.6 s at 12 s)."""
    source.seek(max(0, round((time_s - margin_s) * av.time_base)), backward=True)


def decode_from(source, streams: Sequence, time_s: float, margin_s: float = 0.5) -> Iterator:
    """The streams' frames (in decoding order) from the keyframe before `time_s - margin_s` on. A file
    without an index (MPEG-TS) seeks to a packet near the time, not to a keyframe, and the decoder
    starts at the next keyframe, up to a GOP after `time_s`: then it seeks back further (4x the margin
    each time, to the file's start at most), so no frame of the span is silently missing."""
    seek_before(source, time_s, margin_s)
    if not any(s.type == "video" for s in streams):  # every audio frame starts a decode
        yield from source.decode(*streams)
        return
    while True:
        frames, held, first_s = source.decode(*streams), [], math.inf  # inf: no picture after the seek
        for frame in frames:
            held.append(frame)
            if isinstance(frame, av.VideoFrame) and frame.time is not None:
                first_s = float(frame.time)
                break
        else:
            frames = ()  # decoded to the end (PyAV's spent decode raises on the next call)
        if first_s <= time_s or time_s - margin_s <= 0:
            yield from held
            yield from frames
            return
        margin_s *= 4
        seek_before(source, time_s, margin_s)


def timeline_start(source) -> float:
    """Where the file's timeline starts (FFmpeg's command line counts times from there, as the audio
    stage's WAV does)."""
    return (source.start_time or 0) / av.time_base


def probe(path: Path | str) -> common_pb2.MediaInfo:
    """What a media file holds, the fields core.media.probe (ffprobe) gives, read the same way: the
    container's duration, the first video stream that is not cover art (its size as displayed, its
    average frame rate) and the first audio stream."""
    try:
        with av.open(str(path)) as source:
            video = next((s for s in source.streams.video if not _is_cover(s)), None)
            audio = next(iter(source.streams.audio), None)
            info = common_pb2.MediaInfo(
                duration_s=(source.duration or 0) / av.time_base,
                has_video=video is not None,
                has_audio=audio is not None,
            )
            if video:
                width, height = video.codec_context.width, video.codec_context.height
                info.width, info.height = (height, width) if _first_turns(source, video) % 2 else (width, height)
                info.fps = float(video.average_rate or 0)
            if audio:
                info.sample_rate, info.channels = audio.codec_context.sample_rate, audio.codec_context.channels
            return info
    except av.FFmpegError as exc:
        raise PermanentError(f"not a readable media file: {exc}") from exc


def display_rotation(path: Path | str) -> int:
    """Degrees the first video stream is turned for display (its display matrix, as phones record
    portrait video), counterclockwise, a multiple of 90; 0 when none."""
    try:
        with av.open(str(path)) as source:
            return 90 * _first_turns(source, source.streams.video[0]) if source.streams.video else 0
    except av.FFmpegError as exc:
        raise PermanentError(f"not a readable media file: {exc}") from exc


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counterclockwise quarter turns the frame's display matrix asks for (0 to 3)."""
    return round(frame.rotation / 90) % 4


def _first_turns(source, stream) -> int:
    """quarter_turns of the first frame: PyAV gives the display matrix on frames only (FFmpeg's
    decoder copies the stream's onto each)."""
    frame = next(iter(source.decode(stream)), None)
    return quarter_turns(frame) if frame is not None else 0


def _is_cover(stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)
