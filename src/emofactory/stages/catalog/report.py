"""A release's report: per-class counts and durations per split (seed 002 Tables 1-4, seed 003
Table 3), PNG plots (class distribution per split, clip durations, confidence) and an HTML page."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from emofactory.core.emotions import CANONICAL  # noqa: E402
from emofactory.stages.catalog.releases import SPLITS  # noqa: E402


def class_table(records: Sequence[dict]) -> list[list]:
    """Rows: class, then clips and seconds per split, then totals."""
    counts: dict[tuple, int] = Counter()
    seconds: dict[tuple, float] = defaultdict(float)
    for r in records:
        counts[(r["label"], r["split"])] += 1
        seconds[(r["label"], r["split"])] += r["end_s"] - r["start_s"]
    rows = []
    for label in CANONICAL:
        cells = [label]
        for split in SPLITS:
            cells += [counts[(label, split)], round(seconds[(label, split)], 1)]
        cells += [sum(counts[(label, s)] for s in SPLITS), round(sum(seconds[(label, s)] for s in SPLITS), 1)]
        rows.append(cells)
    return rows


def _plots(records: Sequence[dict], out_dir: Path) -> list[Path]:
    paths = []
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    for i, split in enumerate(SPLITS):
        ax.bar(
            [x + (i - 1) * width for x in range(len(CANONICAL))],
            [sum(1 for r in records if r["label"] == c and r["split"] == split) for c in CANONICAL],
            width,
            label=split,
        )
    ax.set_xticks(range(len(CANONICAL)), CANONICAL, rotation=30)
    ax.set_ylabel("clips")
    ax.set_title("Class distribution per split")
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / "classes.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    for name, values, xlabel in (
        ("durations.png", [r["end_s"] - r["start_s"] for r in records], "clip duration (s)"),
        ("confidence.png", [r["confidence"] for r in records], "label confidence"),
    ):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(values, bins=20)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("clips")
        fig.tight_layout()
        paths.append(out_dir / name)
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def review_section(review: dict) -> str:
    """What people said about the reviewed release (seed 003, App. C.1): kappa, and the factory's
    label against the majority per class and by its confidence."""
    head = "".join(f"<th>{c}</th>" for c in CANONICAL)
    kappa = "".join(f"<td>{_fmt(review['kappa_per_class'].get(c))}</td>" for c in CANONICAL)
    agrees = "".join(f"<td>{_fmt(review['factory_agrees_per_class'].get(c))}</td>" for c in CANONICAL)
    bins = "".join(
        f"<tr><td>{b['low']}–{b['high']}</td><td>{b['clips']}</td><td>{_fmt(b['agrees'])}</td></tr>"
        for b in review["by_confidence"]
    )
    return (
        f"<h2>Human validation</h2><p>Reviewed release {html.escape(review['release_id'])}: {review['complete']} of"
        f" {review['clips']} clips have {review['needed']} labels from {review['annotators']} annotators;"
        f" {review['ambiguous']} ambiguous. Fleiss' kappa {_fmt(review['kappa'])}; the factory's label is the"
        f" majority's for {_fmt(review.get('factory_agrees'))} of decided clips.</p>"
        f"<table border=1><tr><th></th>{head}</tr><tr><th>kappa</th>{kappa}</tr>"
        f"<tr><th>factory = majority</th>{agrees}</tr></table>"
        f"<table border=1><tr><th>factory confidence</th><th>clips</th><th>factory = majority</th></tr>{bins}</table>"
    )


def baselines_section(baselines: dict[str, dict]) -> str:
    """The baselines `emofactory train` left under the release's baselines/ folder, each linked."""
    rows = "".join(
        f"<tr><td><a href='../baselines/{html.escape(folder)}/results.json'>{html.escape(folder)}</a></td>"
        f"<td>{html.escape(name)}</td><td>{f['n']}</td><td>{_fmt(f['accuracy'])}</td><td>{_fmt(f['uar'])}</td>"
        f"<td>{_fmt(f['weighted_f1'])}</td></tr>"
        for folder, result in sorted(baselines.items())
        for name, f in result["test"].items()
    )
    return (
        "<h2>Baselines trained on this release</h2><p>Test split; taught by a modality where the folder says so.</p>"
        "<table border=1><tr><th>run</th><th>model</th><th>clips</th><th>accuracy</th><th>UAR</th>"
        f"<th>weighted F1</th></tr>{rows}</table>"
    )


def not_kept_section(not_kept: dict[str, int]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(code)}</td><td>{n}</td></tr>"
        for code, n in sorted(not_kept.items(), key=lambda x: -x[1])
    )
    return (
        "<h2>Segments left out</h2><p>Segments the release's filter matched that it does not hold, by reason "
        "(a segment counts under each filter it failed).</p>"
        f"<table border=1><tr><th>reason</th><th>segments</th></tr>{rows}</table>"
    )


def write_report(
    name: str,
    records: Sequence[dict],
    out_dir: Path,
    review: dict | None = None,
    baselines: dict | None = None,
    not_kept: dict[str, int] | None = None,
) -> list[Path]:
    """report.html and its PNGs in out_dir; with the review of the release it was validated from, the
    baselines trained on it, and the segments left out by reason."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _plots(records, out_dir)
    header = "".join(f"<th colspan=2>{s}</th>" for s in (*SPLITS, "all"))
    sub = "<th>clips</th><th>seconds</th>" * (len(SPLITS) + 1)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in class_table(records)
    )
    images = "".join(f'<p><img src="{p.name}" alt="{p.stem}"></p>' for p in plots)
    page = out_dir / "report.html"
    page.write_text(
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(name)}</title></head><body>"
        f"<h1>Release {html.escape(name)}</h1><p>{len(records)} clips</p>"
        f"<table border=1><tr><th rowspan=2>class</th>{header}</tr><tr>{sub}</tr>{body}</table>"
        f"{not_kept_section(not_kept) if not_kept else ''}"
        f"{review_section(review) if review else ''}{baselines_section(baselines) if baselines else ''}"
        f"{images}</body></html>",
        encoding="utf-8",
    )
    return [page, *plots]
