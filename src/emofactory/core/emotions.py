"""The canonical classes in messages: scores, the Emotion enum, votes (core/classes.py holds the classes
themselves and how models' class names map onto them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emofactory.core.classes import CANONICAL
from emofactory.v1 import common_pb2

ENUM = {name: common_pb2.Emotion.Value(f"EMOTION_{name.upper()}") for name in CANONICAL}


def scores_message(probs: Sequence[float], model: str) -> common_pb2.EmotionScores:
    return common_pb2.EmotionScores(model=model, **{name: float(p) for name, p in zip(CANONICAL, probs)})


def majority_vote(probs: np.ndarray) -> int:
    """Index of the class most frames vote for; a tie goes to the larger summed probability.
    -1 when there are no frames."""
    if len(probs) == 0:
        return -1
    probs = np.asarray(probs)
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    tied = np.flatnonzero(counts == counts.max())
    return int(tied[np.argmax(probs.sum(axis=0)[tied])])


def emotion_enum(index: int) -> int:
    return ENUM[CANONICAL[index]] if index >= 0 else common_pb2.EMOTION_UNSPECIFIED


def emotion_name(emotion: int) -> str:
    """The canonical name of an Emotion enum value ("" for EMOTION_UNSPECIFIED)."""
    return common_pb2.Emotion.Name(emotion).removeprefix("EMOTION_").lower() if emotion else ""


def emotion_value(name: str) -> int:
    """The Emotion enum value of a canonical name ("" gives EMOTION_UNSPECIFIED)."""
    return ENUM[name] if name else common_pb2.EMOTION_UNSPECIFIED
