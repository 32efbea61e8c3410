"""PyAV (FFmpeg's libraries in process): what the stages that decode video share."""

from __future__ import annotations

import av


def seek_before(source, time_s: float, margin_s: float = 0.5) -> None:
    """Puts the demuxer at the last keyframe before `time_s - margin_s` (the margin: every stream's
    packets start at or before time_s). The offset is in av.time_base units (an int, 1e6 per second):
    dividing by it sought to 0, and every group decoded the video from its start (a 2.5 s clip at
    550 s of the bench video cost 8.9 CPU-s, 0.6 s at 12 s)."""
    source.seek(max(0, round((time_s - margin_s) * av.time_base)), backward=True)


def timeline_start(source) -> float:
    """Where the file's timeline starts (FFmpeg's command line counts times from there, as the audio
    stage's WAV does)."""
    return (source.start_time or 0) / av.time_base
