from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioConfig:
    """Audio extraction; seed 000 §3.2: PCM s16le, 16 kHz, mono."""

    sample_rate: int = 16000
    channels: int = 1
    # A track that decodes to less than this share of the container's duration is called corrupt.
    min_decoded_ratio: float = 0.5
