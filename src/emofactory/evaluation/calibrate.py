"""Fitting logit fusion's per-modality temperatures on a labelled set (`emofactory calibrate`).

The fused posterior is softmax(Σm log P̃m / Tm) over the modalities a label fuses; temperatures above
1 soften an overconfident model. The fit minimises the negative log-likelihood of the true classes
over a grid of temperatures, on the files of an `emofactory eval` report that have every modality and,
where the face is fused with speech, on face and speech files paired by label (`evaluation.paired`:
acted corpora rarely hold both); with speakers known it is also cross-validated by speaker (fit on the
others, scored on the one left out), so the figures say how it carries over to voices it has not seen."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from emofactory.core.emotions import CANONICAL
from emofactory.evaluation.paired import SPEECH, paired_rows

GRID = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
EPS = 1e-6


def _log_posterior(logs: np.ndarray, temperatures: Sequence[float]) -> np.ndarray:
    """logs: [files, modalities, classes] log-probabilities -> [files, classes] fused log-posterior."""
    s = (logs / np.asarray(temperatures)[None, :, None]).sum(axis=1)
    s -= s.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def nll(logs: np.ndarray, truths: np.ndarray, temperatures: Sequence[float]) -> float:
    return float(-_log_posterior(logs, temperatures)[np.arange(len(truths)), truths].mean())


def ece(logs: np.ndarray, truths: np.ndarray, temperatures: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error: |accuracy − confidence| over confidence bins, weighted by their share."""
    post = np.exp(_log_posterior(logs, temperatures))
    confidence, predicted = post.max(axis=1), post.argmax(axis=1)
    total = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        inside = (confidence > lo) & (confidence <= lo + 1 / bins)
        if inside.any():
            total += inside.mean() * abs((predicted[inside] == truths[inside]).mean() - confidence[inside].mean())
    return float(total)


def fit(logs: np.ndarray, truths: np.ndarray) -> tuple[float, ...]:
    return min(itertools.product(GRID, repeat=logs.shape[1]), key=lambda t: nll(logs, truths, t))


def calibrate(rows: Sequence[dict], modalities: Sequence[str]) -> dict:
    """rows: an eval report's files; the fit uses those with probabilities for every modality, and the
    pairs of face and speech files where the modalities join the two."""
    pairs = paired_rows(rows) if "face" in modalities and set(modalities) & set(SPEECH) else []
    files, pairs = ([r for r in group if all("probs" in r.get(m, {}) for m in modalities)] for group in (rows, pairs))
    usable = files + pairs
    if len(usable) < 2:
        raise ValueError(f"{len(usable)} files have scores of every one of {', '.join(modalities)}: too few to fit")
    logs = np.log(np.clip(np.array([[r[m]["probs"] for m in modalities] for r in usable]), EPS, 1.0))
    truths = np.array([CANONICAL.index(r["label"]) for r in usable])
    ones = (1.0,) * len(modalities)
    best = fit(logs, truths)
    out = {
        "modalities": list(modalities),
        "files": len(usable),
        "pairs": len(pairs),
        "temperatures": dict(zip(modalities, best)),
        "before": {"nll": nll(logs, truths, ones), "ece": ece(logs, truths, ones)},
        "after": {"nll": nll(logs, truths, best), "ece": ece(logs, truths, best)},
    }
    speakers = np.array([r.get("speaker") or "" for r in usable])
    if len(set(speakers)) > 1 and all(speakers):
        held = [_held_out(logs, truths, speakers, s) for s in sorted(set(speakers))]
        weights = np.array([n for _, n in held])
        out["by_speaker"] = {"nll": float(np.average([v for v, _ in held], weights=weights)), "speakers": len(held)}
    return out


def _held_out(logs, truths, speakers, speaker) -> tuple[float, int]:
    train, test = speakers != speaker, speakers == speaker
    temperatures = fit(logs[train], truths[train]) if train.sum() > 1 else (1.0,) * logs.shape[1]
    return nll(logs[test], truths[test], temperatures), int(test.sum())


def settings_file(found: dict) -> str:
    """A settings file the labeler loads (EMO_CONFIG or --config): its fusion temperatures."""
    items = ", ".join(f'"{m}={t:g}"' for m, t in found["temperatures"].items())
    return (
        f"# Fitted by `emofactory calibrate` on {found['files']} files: NLL {found['before']['nll']:.3f} -> "
        f"{found['after']['nll']:.3f}, ECE {found['before']['ece']:.3f} -> {found['after']['ece']:.3f}\n"
        f"labeler:\n  fusion_temperatures: [{items}]\n"
    )
