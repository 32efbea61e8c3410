"""The canonical label set (Ekman's seven) and the explicit maps from each model's classes onto it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emofactory.v1 import common_pb2

# Canonical order: the order of the EmotionScores fields and of the Emotion enum.
CANONICAL = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
ENUM = {name: common_pb2.Emotion.Value(f"EMOTION_{name.upper()}") for name in CANONICAL}


def mapping_matrix(classes: Sequence[str], mapping: Mapping[str, str]) -> np.ndarray:
    """[len(classes), 7]: model class i adds its probability to canonical class mapping[i].
    A class left out of `mapping` (contempt, say) is dropped and the rest renormalized."""
    unknown = set(mapping.values()) - set(CANONICAL)
    if unknown:
        raise ValueError(f"not canonical emotions: {sorted(unknown)}")
    matrix = np.zeros((len(classes), len(CANONICAL)), np.float32)
    for i, name in enumerate(classes):
        if name in mapping:
            matrix[i, CANONICAL.index(mapping[name])] = 1.0
    return matrix


def to_canonical(probs: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    mapped = np.asarray(probs, np.float32) @ matrix
    return mapped / np.clip(mapped.sum(axis=-1, keepdims=True), 1e-12, None)


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
