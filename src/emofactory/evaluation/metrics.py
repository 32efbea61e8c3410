"""Classification metrics over the seven canonical classes, as the seeds report them: per-class
precision, recall and F1, unweighted average recall (UAR), weighted F1, accuracy, the confusion
matrix; and for labels a filter keeps or rejects, the yield (kept / all), the accuracy of the kept,
and the accuracy-vs-yield curve over the confidence (keep the most confident first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emofactory.core.emotions import CANONICAL


@dataclass(frozen=True)
class Prediction:
    """One labelled item: its true class, the predicted one ("" when the modality gave none), the
    prediction's confidence, and whether the pipeline kept it."""

    truth: str
    predicted: str
    confidence: float = 0.0
    kept: bool = True


def confusion(truths: Sequence[str], predicted: Sequence[str], classes: Sequence[str] = CANONICAL) -> np.ndarray:
    """Rows: true class; columns: predicted class (a missing prediction counts in no column)."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(truths, predicted):
        if p in index:
            matrix[index[t], index[p]] += 1
    return matrix


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def scores(truths: Sequence[str], predicted: Sequence[str], classes: Sequence[str] = CANONICAL) -> dict:
    """Per-class precision/recall/F1 with support, and the summary figures. Classes with no true item
    stay out of UAR and weighted F1 (their recall is undefined); a missing prediction is a miss."""
    matrix = confusion(truths, predicted, classes)
    support = np.array([sum(t == c for t in truths) for c in classes])
    per_class = {}
    for i, c in enumerate(classes):
        tp, predicted_c = matrix[i, i], matrix[:, i].sum()
        precision, recall = _ratio(tp, predicted_c), _ratio(tp, support[i])
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support[i])}
    present = [c for c in classes if per_class[c]["support"]]
    total = int(support.sum())
    return {
        "n": len(truths),
        "accuracy": _ratio(np.trace(matrix), total),
        "uar": float(np.mean([per_class[c]["recall"] for c in present])) if present else 0.0,
        "weighted_f1": _ratio(sum(per_class[c]["f1"] * per_class[c]["support"] for c in present), total),
        "per_class": per_class,
        "confusion": matrix.tolist(),
        "classes": list(classes),
    }


def accuracy_vs_yield(items: Sequence[Prediction], points: int = 20) -> list[dict]:
    """Keeping the most confident predictions first: at each yield, the share of the kept that is right.
    A confidence that ranks well gives a curve that falls as the yield grows."""
    ranked = sorted((i for i in items if i.predicted), key=lambda i: -i.confidence)
    out = []
    for k in sorted({max(1, round(len(ranked) * q / points)) for q in range(1, points + 1)} if ranked else ()):
        top = ranked[:k]
        out.append(
            {
                "yield": k / len(items),
                "accuracy": sum(i.truth == i.predicted for i in top) / k,
                "min_confidence": top[-1].confidence,
            }
        )
    return out


def evaluate(items: Sequence[Prediction]) -> dict:
    """All of it for one modality (or the fused label): scores over every item (a missing prediction is
    a miss), the yield and accuracy of the kept, and the curve."""
    kept = [i for i in items if i.kept and i.predicted]
    return {
        **scores([i.truth for i in items], [i.predicted for i in items]),
        "answered": sum(bool(i.predicted) for i in items),
        "kept": len(kept),
        "yield": _ratio(len(kept), len(items)),
        "right_of_kept": _ratio(sum(i.truth == i.predicted for i in kept), len(kept)),
        "curve": accuracy_vs_yield(items),
    }
