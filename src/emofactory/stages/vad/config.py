from __future__ import annotations

from dataclasses import dataclass

from emofactory.core.config import options_over
from emofactory.core.errors import InvalidRequest


@dataclass(frozen=True)
class VadConfig:
    """Speech segmentation; defaults from seed 000 §3.3-3.3.1 (and seed 002 §3.4.2 for max_segment_s)."""

    # "webrtc" (WebRTC VAD, seed 000) or "silero" (Silero VAD through ONNX Runtime, seed 001).
    engine: str = "webrtc"
    # WebRTC VAD aggressiveness, 0 (least) to 3 (most eager to call a frame non-speech).
    aggressiveness: int = 2
    # WebRTC frames: 10, 20 or 30 ms (seed 000: 30 ms).
    frame_ms: int = 30
    # Segments shorter than this are dropped (seed 000: 0.5 s).
    min_segment_s: float = 0.5
    # Silences at least this long split speech; shorter gaps are merged over (seed 000: 0.3 s).
    min_silence_s: float = 0.3
    # Tighten segment edges to where 10 ms energy rises within this many dB of the segment's loud
    # level (VADs hold on after speech; 0: off). The edge never moves more than edge_trim_max_s.
    edge_trim_db: float = 30.0
    edge_trim_max_s: float = 0.3
    # MFCC speaker-change split inside speech segments (seed 000 §3.3.1).
    speaker_change: bool = True
    # Length of the windows compared on either side of a candidate change point.
    speaker_window_s: float = 1.0
    # Step between candidate change points.
    speaker_hop_s: float = 0.1
    # Split where the cosine similarity of consecutive windows' mean MFCCs falls below this.
    speaker_threshold: float = 0.0
    # Split longer segments into equal sub-segments no longer than this (0: off; seed 002: 3 s).
    max_segment_s: float = 0.0
    # Silero: a 32 ms chunk is speech when its probability reaches this.
    silero_threshold: float = 0.5
    # Path of the Silero VAD ONNX model (never downloaded at run time).
    silero_model_path: str = ""


def checked_options(defaults: VadConfig, options) -> VadConfig:
    """The request's options over the defaults, with out-of-range values named by field."""
    config = options_over(defaults, options)
    for name in ("min_segment_s", "min_silence_s", "speaker_window_s", "speaker_hop_s"):
        if getattr(config, name) <= 0:
            raise InvalidRequest(f"options.{name}", f"must be positive, not {getattr(config, name)}")
    if config.max_segment_s < 0:
        raise InvalidRequest("options.max_segment_s", "must be 0 (off) or positive")
    return config
