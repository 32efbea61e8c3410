from __future__ import annotations

from dataclasses import dataclass

from emofactory.core.config import options_over
from emofactory.core.errors import InvalidRequest

ENGINES = ("webrtc", "silero")
FRAMES_MS = (10, 20, 30)  # what WebRTC VAD takes
# Lower bounds where a smaller value only exhausts resources: a 1 ms segment is no speech any model can
# hear (sphinx crashed on it), and max_segment_s 1e-4 cut one video into 34,100 segments.
SHORTEST_SEGMENT_S = 0.1
SHORTEST_SPLIT_S = 1.0
SHORTEST_STEP_S = 0.01
# Each chunk is a message for every later stage, and each of them reads the video's media once per chunk.
SHORTEST_CHUNK_S = 10.0


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
    # The stages after vad run on chunks of the video's segments, about this many seconds of the video
    # each, so that they work on a long video's chunks at once, one behind the other, and each
    # message weighs about the same for autoscaling (0: the whole video is one chunk).
    chunk_s: float = 60.0


def checked_options(defaults: VadConfig, options) -> VadConfig:
    """The request's options over the defaults, with out-of-range values named by field."""
    config = options_over(defaults, options)

    def refuse(name: str, rule: str) -> None:
        raise InvalidRequest(f"options.{name}", f"must be {rule}, not {getattr(config, name)!r}")

    if config.engine not in ENGINES:
        refuse("engine", f"one of {', '.join(ENGINES)}")
    if not 0 <= config.aggressiveness <= 3:
        refuse("aggressiveness", "0 to 3")
    if config.frame_ms not in FRAMES_MS:
        refuse("frame_ms", "10, 20 or 30")
    for name, low in (("min_segment_s", SHORTEST_SEGMENT_S), ("min_silence_s", config.frame_ms / 1000),
                      ("speaker_window_s", SHORTEST_SEGMENT_S), ("speaker_hop_s", SHORTEST_STEP_S)):  # fmt: skip
        if getattr(config, name) < low:
            refuse(name, f"at least {low:g} s")
    if config.max_segment_s and config.max_segment_s < max(SHORTEST_SPLIT_S, config.min_segment_s):
        refuse("max_segment_s", f"0 (off) or at least {max(SHORTEST_SPLIT_S, config.min_segment_s):g} s")
    if config.max_segment_s < 0:
        refuse("max_segment_s", "0 (off) or positive")
    if not -1 <= config.speaker_threshold <= 1:
        refuse("speaker_threshold", "a cosine similarity in [-1, 1]")
    if not 0 < config.silero_threshold < 1:
        refuse("silero_threshold", "in (0, 1)")
    if config.chunk_s and not config.chunk_s >= SHORTEST_CHUNK_S:
        refuse("chunk_s", f"0 (one chunk) or at least {SHORTEST_CHUNK_S:g} s")
    if config.edge_trim_db < 0 or config.edge_trim_max_s < 0:
        refuse("edge_trim_db" if config.edge_trim_db < 0 else "edge_trim_max_s", "0 or positive")
    return config
