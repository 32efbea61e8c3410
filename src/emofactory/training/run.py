"""`emofactory train`: a baseline per modality trained on a release's train split (early stopping on
its validation split) and measured on its test split, as the seeds report theirs: per-class
precision, recall and F1, weighted F1, UAR, accuracy and the confusion matrix (JSON and PNG),
saved beside the model with the release's id. `fusion` trains the three and averages the
probabilities of the modalities each clip has (seed 001's late fusion).

With a teacher (seed 002: the face teaches the voice), the train and validation clips are labelled
by the teacher modality's scores in the release, keeping only those it is confident about; the
test split keeps the release's labels, so the student is measured against the factory's labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emofactory.core.classes import CANONICAL
from emofactory.evaluation.metrics import scores
from emofactory.models.baseline import probabilities
from emofactory.stages.catalog.report import write_report
from emofactory.training import baseline
from emofactory.training.features import AUDIO_FEATURES, MODALITIES, release_features

SPLITS = ("train", "validation", "test")
FUSION = "fusion"
BASELINES = "baselines"  # where in a release folder `emofactory train` puts its runs by default


class NothingToLearn(ValueError):
    pass


REQUIRED = ("clip_id", "label", "split", "media", "start_s", "end_s")


def read_manifest(root: Path) -> dict:
    """The release folder's manifest.json, checked for what training reads, with the clip at fault named."""
    path = root / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{path} not found: give the folder `emofactory release` or `run --out` wrote")
    manifest = json.loads(path.read_text())
    if not manifest.get("release_id") or not isinstance(manifest.get("clips"), list):
        raise ValueError(f"{path}: not a release manifest (release_id and clips)")
    for clip in manifest["clips"]:
        missing = [k for k in REQUIRED if k not in clip]
        if missing or clip["label"] not in CANONICAL or clip["split"] not in SPLITS:
            raise ValueError(f"{path}: clip {clip.get('clip_id', '?')!r} lacks {missing} or has an unknown label/split")
    return manifest


def teacher_labels(records: Sequence[dict], teacher: str, min_confidence: float) -> list[str | None]:
    """The teacher's most probable class for each clip, or None where its top score is under min_confidence."""
    found = []
    for record in records:
        probs = np.array([float(record.get("scores", {}).get(teacher, {}).get(c, 0.0)) for c in CANONICAL])
        found.append(CANONICAL[int(probs.argmax())] if probs.sum() > 0 and probs.max() >= min_confidence else None)
    return found


def labels_for(records, teacher: str, min_confidence: float) -> list[str | None]:
    if not teacher:
        return [r["label"] for r in records]
    taught = teacher_labels(records, teacher, min_confidence)
    return [r["label"] if r["split"] == "test" else t for r, t in zip(records, taught)]


def train_modality(
    root: Path, records, labels, modality: str, config: baseline.TrainConfig, audio_features: str
) -> dict:
    """Trains one modality's baseline; returns it, its card and its probabilities for every clip."""
    x, present = release_features(root, records, modality, audio_features)
    y = np.array([CANONICAL.index(label) if label else -1 for label in labels])
    split = np.array([r["split"] for r in records])
    usable = present & (y >= 0)
    train, val = usable & (split == "train"), usable & (split == "validation")
    if not train.any():
        raise NothingToLearn(f"no train clip has {modality} features and a label: nothing to learn from")
    model, history = baseline.fit(x[train], y[train], x[val], y[val], config)
    card = {"modality": modality, **baseline.train_card(config)}
    if modality == "audio":
        card["features"] = audio_features
    return {
        "model": model,
        "card": card,
        "history": history,
        "probabilities": probabilities(model, x),
        "present": present,
        "clips": {s: int((usable & (split == s)).sum()) for s in SPLITS},
    }


def test_scores(records, probabilities: np.ndarray, present: np.ndarray) -> dict:
    """Metrics on the test split; a test clip without the modality counts as a miss."""
    test = [i for i, r in enumerate(records) if r["split"] == "test"]
    truths = [records[i]["label"] for i in test]
    predicted = [CANONICAL[int(probabilities[i].argmax())] if present[i] else "" for i in test]
    return scores(truths, predicted)


def train_release(
    root: Path,
    modality: str,
    out: Path,
    config: baseline.TrainConfig | None = None,
    teacher: str = "",
    teacher_min_confidence: float = 0.5,
    audio_features: str = AUDIO_FEATURES[0],
) -> dict:
    config = config or baseline.TrainConfig()
    manifest = read_manifest(root)
    records = manifest["clips"]
    if modality not in (*MODALITIES, FUSION):
        raise ValueError(f"--modality must be one of {', '.join((*MODALITIES, FUSION))}, not {modality!r}")
    if teacher and teacher not in MODALITIES:
        raise ValueError(f"--teacher must be one of {', '.join(MODALITIES)}, not {teacher!r}")
    if audio_features not in AUDIO_FEATURES:
        raise ValueError(f"--audio-features must be one of {', '.join(AUDIO_FEATURES)}, not {audio_features!r}")
    labels = labels_for(records, teacher, teacher_min_confidence)
    trained, skipped = {}, {}
    for m in MODALITIES if modality == FUSION else (modality,):
        try:
            trained[m] = train_modality(root, records, labels, m, config, audio_features)
        except NothingToLearn as exc:
            if modality != FUSION:
                raise
            skipped[m] = str(exc)  # fusion goes on with the modalities the release has
    results = {m: test_scores(records, t["probabilities"], t["present"]) for m, t in trained.items()}
    if modality == FUSION:
        stacked = np.stack([t["probabilities"] * t["present"][:, None] for t in trained.values()])
        results[FUSION] = test_scores(records, stacked.sum(0), stacked.sum((0, 2)) > 0)
    result = {
        "release_id": manifest["release_id"],
        "release_name": manifest.get("name", ""),
        "modality": modality,
        "teacher": teacher or None,
        "teacher_min_confidence": teacher_min_confidence if teacher else None,
        "audio_features": audio_features,
        "train": baseline.train_card(config)["train"],
        "clips": {m: t["clips"] for m, t in trained.items()},
        "epochs": {m: len(t["history"]) for m, t in trained.items()},
        "skipped": skipped,
        "test": results,
    }
    for m, t in trained.items():  # each model's card says what it learned from and how it did
        card = {**t["card"], "release_id": manifest["release_id"], "teacher": teacher or None}
        baseline.save(t["model"], out / m, {**card, "test": results[m], "history": t["history"]})
    (out / "results.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    shown = results[modality]
    (out / "confusion.json").write_text(json.dumps({"classes": list(CANONICAL), "confusion": shown["confusion"]}))
    plot_confusion(shown["confusion"], f"{modality} on {manifest['release_id']} (test)", out / "confusion.png")
    if out.resolve().parent == (root / BASELINES).resolve():
        link_in_report(root, manifest)
    return result


def link_in_report(root: Path, manifest: dict) -> Path:
    """The release's report again, with every baseline under its baselines/ folder."""
    found = {p.parent.name: json.loads(p.read_text()) for p in sorted((root / BASELINES).glob("*/results.json"))}
    report = write_report(
        manifest["name"], manifest["clips"], root / "report", manifest.get("review"), found, manifest.get("not_kept")
    )
    return report[0]


def plot_confusion(matrix, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(CANONICAL)), CANONICAL, rotation=40)
    ax.set_yticks(range(len(CANONICAL)), CANONICAL)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
