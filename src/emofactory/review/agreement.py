"""What people said about clips (seed 003, App. C.1): each clip's majority label, and how far the
annotators agree beyond chance, Fleiss' kappa, overall and per class, and how often the factory's
label is the people's.

Annotations are {clip id: {annotator: label}}. An annotator who skipped a clip or was unsure gave no
label for it; a clip with fewer than two labels takes no part in kappa."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from emofactory.core.classes import CANONICAL

Annotations = Mapping[str, Mapping[str, str]]


def majority(labels: Sequence[str]) -> str | None:
    """The label most annotators gave; None (ambiguous) on a tie or with no label at all."""
    ranked = Counter(labels).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def counts(annotations: Annotations, classes: Sequence[str] = CANONICAL) -> np.ndarray:
    """Clips x classes: how many annotators gave each class to each clip (clips with >= 2 labels)."""
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for by_annotator in annotations.values():
        labels = [label for label in by_annotator.values() if label in index]
        if len(labels) >= 2:
            row = np.zeros(len(classes), int)
            for label in labels:
                row[index[label]] += 1
            rows.append(row)
    return np.array(rows, int).reshape(-1, len(classes))


def fleiss_kappa(table: np.ndarray) -> tuple[float, np.ndarray]:
    """Fleiss' kappa of a subjects x categories count table, and each category's kappa (Fleiss
    1971, eq. 2 and 9; NaN for a category nobody chose). Subjects may have different numbers of
    ratings (at least two): each subject's agreement is over its own pairs of ratings."""
    table = np.asarray(table, float)
    raters = table.sum(axis=1)
    if len(table) == 0 or (raters < 2).any():
        raise ValueError("every subject needs at least two ratings")
    share = table.sum(axis=0) / raters.sum()  # p_j
    observed = ((table * (table - 1)).sum(axis=1) / (raters * (raters - 1))).mean()  # P-bar
    chance = (share**2).sum()  # P-bar_e
    overall = (observed - chance) / (1 - chance) if chance < 1 else 1.0
    disagreement = (table * (raters[:, None] - table) / (raters[:, None] - 1)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = 1 - disagreement / (raters.sum() * share * (1 - share))
    return float(overall), per_class


def by_confidence(
    decided: Sequence[tuple[str, str, float]], edges: Sequence[float] = (0.0, 0.5, 0.7, 0.9, 1.0)
) -> list[dict]:
    """(majority, factory label, factory confidence) triples binned by confidence: per bin
    [low, high) (the last one closed) its clips and the share whose factory label is the majority."""
    bins = []
    for low, high in zip(edges, edges[1:]):
        inside = [m == f for m, f, c in decided if low <= c < high or (high == edges[-1] and c == high)]
        bins.append(
            {"low": low, "high": high, "clips": len(inside), "agrees": sum(inside) / len(inside) if inside else None}
        )
    return bins


def by_annotator(annotations: Annotations) -> dict[str, dict]:
    """Per annotator: their labels, and how often each agrees with the majority of the others on
    the same clip (leave-one-out, so their own vote does not count; clips where the others tie are
    not compared). A careless or adversarial annotator stands out here."""
    found: dict[str, dict] = {}
    for by in annotations.values():
        for annotator, label in by.items():
            row = found.setdefault(annotator, {"labels": 0, "compared": 0, "agreed": 0})
            row["labels"] += 1
            others = majority([other for name, other in by.items() if name != annotator])
            if others is not None:
                row["compared"] += 1
                row["agreed"] += label == others
    return {
        a: {
            "labels": r["labels"],
            "compared": r["compared"],
            "agrees": r["agreed"] / r["compared"] if r["compared"] else None,
        }
        for a, r in sorted(found.items())
    }


def summary(annotations: Annotations, factory: Mapping[str, str] | None = None, classes=CANONICAL) -> dict:
    """Per clip its majority (None: ambiguous); kappa overall and per class; with the factory's
    labels, how often they are the majority, overall and per majority class."""
    majorities = {clip: majority(list(by.values())) for clip, by in annotations.items()}
    table = counts(annotations, classes)
    result: dict = {"clips": len(annotations), "majority": majorities}
    result["ambiguous"] = sum(m is None for m in majorities.values())
    if len(table):
        overall, per_class = fleiss_kappa(table)
        result["kappa"] = overall
        result["kappa_per_class"] = {c: None if np.isnan(k) else float(k) for c, k in zip(classes, per_class)}
    if factory is not None:
        decided = [(m, factory[c]) for c, m in majorities.items() if m is not None and c in factory]
        result["factory_agrees"] = sum(m == f for m, f in decided) / len(decided) if decided else None
        result["factory_agrees_per_class"] = {
            c: sum(f == c for m, f in decided if m == c) / n for c in classes if (n := sum(m == c for m, _ in decided))
        }
    return result
