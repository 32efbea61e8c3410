"""The evaluation's outputs: a table per modality and fused (printed), `eval.json` with every figure
and every file's predictions, `confusion.png` and `curve.png` (accuracy vs yield over the confidence)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emofactory.core.emotions import CANONICAL  # noqa: E402
from emofactory.evaluation.metrics import evaluate  # noqa: E402
from emofactory.evaluation.paired import pair_predictions, paired_rows  # noqa: E402
from emofactory.evaluation.runner import MODALITIES, FileResult  # noqa: E402


def figures(results: Sequence[FileResult], rows: Sequence[dict], labeler) -> dict[str, dict]:
    """Per modality over the files that hold its input (face: video or image; audio and text: audio),
    fused over the files that reached the labeler, over those with both (audio-visual), and over face
    and speech files paired by label (`paired`, from the report's `rows`), as the job's labeler fuses them."""
    out = {}
    for modality in MODALITIES:
        judged = [r for r in results if r.judged(modality) and not r.failure]
        if judged:
            out[modality] = evaluate([r.prediction(modality) for r in judged])
    for name, fused in (
        ("fused", [r.fused for r in results if r.fused is not None]),
        ("fused (av)", [r.fused for r in results if r.fused is not None and r.has_video and r.has_audio]),
    ):
        if fused:
            out[name] = evaluate(fused)
    pairs = paired_rows(rows)
    if pairs:
        out["fused (paired)"] = evaluate(pair_predictions(pairs, labeler))
    return out


def summary_table(found: dict[str, dict]) -> Table:
    table = Table("", "files", "answered", "accuracy", "UAR", "weighted F1", "kept", "yield", "right of kept")
    for name, f in found.items():
        table.add_row(
            name, str(f["n"]), str(f["answered"]), f"{f['accuracy']:.2f}", f"{f['uar']:.2f}",
            f"{f['weighted_f1']:.2f}", str(f["kept"]), f"{f['yield']:.2f}", f"{f['right_of_kept']:.2f}",
        )  # fmt: skip
    return table


def class_table(found: dict[str, dict]) -> Table:
    table = Table("class", *(f"{name} P/R/F1" for name in found), "n")
    for c in CANONICAL:
        cells = [found[name]["per_class"][c] for name in found]
        support = max(cell["support"] for cell in cells)
        table.add_row(c, *(f"{x['precision']:.2f}/{x['recall']:.2f}/{x['f1']:.2f}" for x in cells), str(support))
    return table


def plot_confusions(found: dict[str, dict], path: Path) -> Path:
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 4.2), squeeze=False)
    short = [c[:4] for c in CANONICAL]
    for ax, (name, f) in zip(axes[0], found.items()):
        ax.imshow(f["confusion"], cmap="Blues")
        for i, row in enumerate(f["confusion"]):
            for j, n in enumerate(row):
                if n:
                    ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
        ax.set(title=f"{name} (UAR {f['uar']:.2f})", xlabel="predicted", ylabel="true")
        ax.set_xticks(range(len(short)), short, rotation=45)
        ax.set_yticks(range(len(short)), short)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(found: dict[str, dict], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, f in found.items():
        if f["curve"]:
            ax.plot([p["yield"] for p in f["curve"]], [p["accuracy"] for p in f["curve"]], marker=".", label=name)
    ax.set(
        xlabel="yield (kept / all, most confident first)", ylabel="accuracy of the kept", ylim=(0, 1.02), xlim=(0, 1)
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def file_rows(results: Sequence[FileResult]) -> list[dict]:
    rows = []
    for r in results:
        row = {"path": str(r.item.path), "label": r.item.label, "speaker": r.item.speaker, "failure": r.failure}
        for modality in MODALITIES:
            if modality in r.scores:
                p, probs = r.prediction(modality), r.scores[modality]
                row[modality] = {"predicted": p.predicted, "confidence": round(p.confidence, 4)}
                if probs is not None:  # what `emofactory calibrate` fits the fusion's temperatures on
                    row[modality]["probs"] = [round(float(x), 6) for x in probs]
        if r.fused is not None:
            row["fused"] = {
                "predicted": r.fused.predicted,
                "confidence": round(r.fused.confidence, 4),
                "kept": r.fused.kept,
            }
        rows.append(row)
    return rows


def write_report(results: Sequence[FileResult], out: Path, settings: dict, console: Console, labeler) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rows = file_rows(results)
    found = figures(results, rows, labeler)
    report = {"settings": settings, "figures": found, "files": rows}
    (out / "eval.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    console.print(summary_table(found))
    console.print(class_table(found))
    failures = [r for r in results if r.failure]
    for r in failures:
        console.print(f"[yellow]{r.item.path.name}[/yellow]: {r.failure}", highlight=False)
    if found:
        plot_confusions(found, out / "confusion.png")
        plot_curves(found, out / "curve.png")
    console.print(f"eval.json, confusion.png, curve.png in {out}")
    return report
