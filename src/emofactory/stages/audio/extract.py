"""Audio extraction, a function of (video file, AudioConfig) -> WAV file (seed 000 §3.2), with the
seed's fallback made explicit: a missing or corrupt track is a clear, permanent error, never a crash."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from emofactory.core.errors import PermanentError
from emofactory.core.media import ffmpeg_reason, probe
from emofactory.stages.audio.config import AudioConfig
from emofactory.v1 import common_pb2


def extract_audio(video: Path, wav: Path, config: AudioConfig) -> common_pb2.MediaInfo:
    """Writes `wav` (PCM s16le at the configured rate and channels); returns the source's media info."""
    source = probe(video)
    if not source.has_audio:
        raise PermanentError("the video has no audio track")
    try:
        (
            ffmpeg.input(str(video))
            .output(
                str(wav),
                map="0:a:0",
                acodec="pcm_s16le",
                ac=config.channels,
                ar=config.sample_rate,
                f="wav",
                # bit-exact output: the same video always gives the same bytes (idempotent stage)
                fflags="+bitexact",
                **{"flags:a": "+bitexact"},
            )
            .overwrite_output()
            .run(capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        raise PermanentError(f"the audio track could not be decoded: {ffmpeg_reason(exc)}") from exc
    decoded = probe(wav).duration_s
    if source.duration_s > 0 and decoded < config.min_decoded_ratio * source.duration_s:
        raise PermanentError(f"the audio track is corrupt: decoded {decoded:.2f} s of {source.duration_s:.2f} s")
    return source
