from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioConfig:
    """Audio extraction; seed 000 §3.2: PCM s16le, 16 kHz, mono."""

    sample_rate: int = 16000
    channels: int = 1
    # Also keep the track at the source's own rate (mono, at most 48 kHz), for the speech-emotion
    # model: the SER CNN on VAD segments of the 58 labelled speech files of shared/assets, with
    # 0.5 s of context, 32 right at the source rate against 23 at 16 kHz.
    source_rate_audio: bool = True
    max_source_rate: int = 48000
    # A track that decodes to less than this share of the container's duration is called corrupt.
    min_decoded_ratio: float = 0.5
