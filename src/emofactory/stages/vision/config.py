from __future__ import annotations

from dataclasses import dataclass

from emofactory.core.config import options_over
from emofactory.core.errors import InvalidRequest


@dataclass(frozen=True)
class VisionConfig:
    """Faces per speech segment; defaults from seed 000 §3.4-3.5 (seed 002 §3.3-3.4 in comments)."""

    # Frames analysed per second of speech (seed 000: 1; seed 002: 10).
    fps: float = 1.0
    # Frames are downscaled by this before face detection (seed 000: 0.5).
    scale: float = 0.5
    # Keep only frames with exactly one face (seed 002) instead of taking the largest (seed 000).
    strict_single_face: bool = False
    # A segment with fewer face frames than this is flagged "few_face_frames" (seed 002: 11 at 10 fps).
    min_face_frames: int = 1
    # Faces MTCNN is less sure of than this are ignored.
    face_confidence: float = 0.9
    # Majority votes are also given per sub-segment no longer than this (seed 002 §3.4.2: 3 s).
    vote_window_s: float = 3.0
    # Frames per model call.
    batch_size: int = 8
    # Segments closer than this share one decode of the video; a shared span is at most max_span_s.
    merge_gap_s: float = 2.0
    max_span_s: float = 60.0
    # Face crops sent to FER: a square around the box, grown (or, negative, shrunk) by this fraction.
    # MTCNN's box takes in forehead and chin; FER2013 faces are cropped tighter. Measured on the 31
    # labelled videos of shared/assets (segment votes right): mini-XCEPTION alone -0.1: 16, 0: 15,
    # +0.1: 13; the mean of mini-XCEPTION and facex (the default model) -0.1: 17, 0: 18, +0.1: 17.
    # Through `make eval` (39 files, photos too) the mean gives UAR 0.61 at -0.1 and 0.56 at 0.
    face_margin: float = -0.1
    # Side of the face crops stored per segment, in pixels.
    crop_size: int = 112
    # The active-speaker check (speaker.py): frames per second it compares the mouth at (0: no check),
    # the shortest segment it checks, and the speaker sync (the correlation of mouth motion and speech
    # energy) under which a segment is flagged "off_screen_speaker": the visible face does not speak.
    # bench.active_speaker on the assets' 12 talking heads, their own audio against it shifted or
    # swapped (78 segments checked, 28 with the face speaking): under 0 flags 0.58 of the faces that
    # do not speak at precision 0.88 (4 of 28 speaking flagged); under 0.1, 0.68 at 0.85 (6 of 28).
    speaker_fps: float = 10.0
    speaker_min_s: float = 1.0
    min_speaker_sync: float = 0.0
    # With several faces, the check scores each (a face track across the segment's frames) and takes
    # the one whose mouth moves with the speech for the speaker's, not the largest, where its score is
    # more than pick_margin above the largest one's (speaker.py; bench.active_speaker's two faces).
    pick_speaker: bool = True
    pick_margin: float = 0.2


def checked_options(defaults: VisionConfig, options) -> VisionConfig:
    """The request's options over the defaults, with out-of-range values named by field."""
    config = options_over(defaults, options)
    if not 0 < config.fps <= 60:
        raise InvalidRequest("options.fps", f"must be in (0, 60], not {config.fps}")
    if not 0 < config.scale <= 1:
        raise InvalidRequest("options.scale", f"must be in (0, 1], not {config.scale}")
    if not 0 <= config.face_confidence <= 1:
        raise InvalidRequest("options.face_confidence", f"must be in [0, 1], not {config.face_confidence}")
    if config.vote_window_s <= 0:
        raise InvalidRequest("options.vote_window_s", "must be positive")
    if not 0 <= config.speaker_fps <= 30:
        raise InvalidRequest("options.speaker_fps", f"must be in [0, 30] (0: no check), not {config.speaker_fps}")
    if not 0.5 <= config.speaker_min_s <= 60:
        raise InvalidRequest("options.speaker_min_s", f"must be in [0.5, 60] seconds, not {config.speaker_min_s}")
    if not -1 <= config.min_speaker_sync <= 1:
        raise InvalidRequest("options.min_speaker_sync", f"must be in [-1, 1], not {config.min_speaker_sync}")
    if not 0 <= config.pick_margin <= 2:
        raise InvalidRequest("pick_margin", f"must be in [0, 2], not {config.pick_margin}")
    if config.min_face_frames < 0:
        raise InvalidRequest("options.min_face_frames", "must not be negative")
    return config
