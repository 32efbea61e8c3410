"""The canonical label set (Ekman's seven) and how each model's class names map onto it. No protobuf
here: Triton's model repository imports it without the generated stubs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emofactory.core.errors import PermanentError

# Canonical order: the order of the EmotionScores fields and of the Emotion enum.
CANONICAL = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")

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
