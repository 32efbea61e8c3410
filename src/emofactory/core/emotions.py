"""The canonical label set (Ekman's seven) and the explicit maps from each model's classes onto it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emofactory.core.errors import PermanentError
from emofactory.v1 import common_pb2

# Canonical order: the order of the EmotionScores fields and of the Emotion enum.
CANONICAL = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
ENUM = {name: common_pb2.Emotion.Value(f"EMOTION_{name.upper()}") for name in CANONICAL}


# Every class name the emotion models we know use (lower case), onto the canonical seven: RAVDESS
# and CREMA-D codes, FER2013, AffectNet / HSEmotion, emotion2vec, SUPERB-ER, GoEmotions' Ekman
# grouping, j-hartmann's DistilRoBERTa. None drops the class (its probability is left out and the
# rest renormalised): contempt and "other" have no canonical counterpart.
CLASS_NAMES: dict[str, str | None] = {
    **dict.fromkeys(("anger", "angry", "ang", "mad", "annoyed"), "anger"),
    **dict.fromkeys(("disgust", "disgusted", "dis"), "disgust"),
    **dict.fromkeys(("fear", "fearful", "fea", "scared", "afraid"), "fear"),
    **dict.fromkeys(("happiness", "happy", "hap", "joy", "joyful"), "happiness"),
    **dict.fromkeys(("sadness", "sad", "sorrow"), "sadness"),
    **dict.fromkeys(("surprise", "surprised", "sur", "suprise"), "surprise"),
    **dict.fromkeys(("neutral", "neu", "neutrality", "calm"), "neutral"),
    **dict.fromkeys(("contempt", "other", "unknown", "<unk>"), None),
}


def canonical_matrix(classes: Sequence[str], model: str) -> np.ndarray:
    """[len(classes), 7]: model class i adds its probability to its canonical class (CLASS_NAMES).
    A name the table does not know is an error naming it and the model."""
    unknown = [name for name in classes if name.strip().lower() not in CLASS_NAMES]
    if unknown:
        raise PermanentError(
            f"{model}: class names {unknown} have no canonical emotion; known names: {', '.join(sorted(CLASS_NAMES))}"
        )
    if not any(CLASS_NAMES[name.strip().lower()] for name in classes):
        raise PermanentError(f"{model}: none of its classes {list(classes)} is an emotion")
    matrix = np.zeros((len(classes), len(CANONICAL)), np.float32)
    for i, name in enumerate(classes):
        target = CLASS_NAMES[name.strip().lower()]
        if target:
            matrix[i, CANONICAL.index(target)] = 1.0
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
