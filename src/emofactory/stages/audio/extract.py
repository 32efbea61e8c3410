"""Audio extraction, a function of (video file, AudioConfig) -> WAV file (seed 000 §3.2), with the
seed's fallback made explicit: a missing or corrupt track is a clear, permanent error, never a crash."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from emofactory.core.errors import PermanentError
from emofactory.core.media import ffmpeg_reason, probe
from emofactory.stages.audio.config import AudioConfig
from emofactory.v1 import common_pb2


def _wav(stream, wav: Path, rate: int, channels: int):
    # bit-exact output: the same video always gives the same bytes (idempotent stage)
    return stream.output(
        str(wav), acodec="pcm_s16le", ac=channels, ar=rate, f="wav", fflags="+bitexact", **{"flags:a": "+bitexact"}
    )


def source_rate(source: common_pb2.MediaInfo, config: AudioConfig) -> int:
    """The rate of the source-rate track, or 0 where none is kept (off, or no faster than the main one)."""
    rate = min(source.sample_rate, config.max_source_rate)
    return rate if config.source_rate_audio and rate > config.sample_rate else 0


def extract_audio(video: Path, wav: Path, config: AudioConfig, source_wav: Path | None = None) -> common_pb2.MediaInfo:
    """Writes `wav` (PCM s16le at the configured rate and channels) and, where `source_rate` says so,
    `source_wav` (mono at the source's rate) in the same decode; returns the source's media info."""
    source = probe(video)
    if not source.has_audio:
        raise PermanentError("the video has no audio track")
    track = ffmpeg.input(str(video))["a:0"]
    outputs = [_wav(track, wav, config.sample_rate, config.channels)]
    if source_wav is not None and source_rate(source, config):
        outputs.append(_wav(track, source_wav, source_rate(source, config), 1))
    try:
        ffmpeg.merge_outputs(*outputs).overwrite_output().run(capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        raise PermanentError(f"the audio track could not be decoded: {ffmpeg_reason(exc)}") from exc
    decoded = probe(wav).duration_s
    if source.duration_s > 0 and decoded < config.min_decoded_ratio * source.duration_s:
        raise PermanentError(f"the audio track is corrupt: decoded {decoded:.2f} s of {source.duration_s:.2f} s")
    return source
