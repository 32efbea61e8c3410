"""A release on disk, in the formats training code already loads:

manifest.json              the release: parameters, splits, per clip its split and metadata
media/<clip_id>.mp4|.wav|.jpg
metadata.jsonl             one record per clip (seed 000 §3.7 / seed 003 App. B fields)
<split>.csv                MELD-like columns (Sr No., Utterance, Speaker, Emotion, Sentiment, ...)
webdataset/<split>-NNNNN.tar   WebDataset shards: <key>.mp4 .wav .jpg .json .txt .cls
parquet/<split>.parquet    for `datasets.load_dataset("parquet", ...)`; media paths relative to the release
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from emofactory.core.emotions import CANONICAL

FORMATS = ("jsonl", "csv", "webdataset", "parquet")
MEDIA = {"mp4": "video", "wav": "audio", "jpg": "frame"}
# Where each clip came from (records.source_fields).
SOURCE_FIELDS = ("source", "source_title", "source_duration_s", "ingested_at")
# MELD's sentiment of each class (surprise can go either way: MELD marks it per utterance).
SENTIMENT = {"anger": "negative", "disgust": "negative", "fear": "negative", "sadness": "negative"}
SENTIMENT |= {"happiness": "positive", "neutral": "neutral", "surprise": "ambiguous"}


def _timestamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_jsonl(records: Sequence[dict], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def write_csv(records: Sequence[dict], out_dir: Path, split: str) -> Path:
    """MELD's columns; Dialogue_ID numbers the source videos, Utterance_ID the clips in each."""
    path = out_dir / f"{split}.csv"
    dialogues: dict[str, int] = {}
    utterances: dict[str, int] = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"]
            + ["StartTime", "EndTime", "Clip_ID", "Confidence", "Language", "Video"]
            + ["Source", "Source_Title", "Source_Duration", "Ingested_At"]
        )
        for n, r in enumerate((r for r in records if r["split"] == split), 1):
            dialogue = dialogues.setdefault(r["video_id"], len(dialogues))
            utterance = utterances[r["video_id"]] = utterances.get(r["video_id"], -1) + 1
            writer.writerow(
                [n, r["transcript"], "", r["label"], SENTIMENT[r["label"]], dialogue, utterance]
                + [_timestamp(r["start_s"]), _timestamp(r["end_s"]), r["clip_id"], r["confidence"], r["language"]]
                + [r["media"].get("mp4", "")]
                + [r[k] for k in SOURCE_FIELDS]
            )
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0  # fixed mtime: the same release gives the same bytes
    tar.addfile(info, io.BytesIO(data))


def write_webdataset(records: Sequence[dict], root: Path, out_dir: Path, shard_size: int) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    for split in sorted({r["split"] for r in records}):
        members = [r for r in records if r["split"] == split]
        for first in range(0, len(members), shard_size):
            path = out_dir / f"{split}-{first // shard_size:05d}.tar"
            with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
                for r in members[first : first + shard_size]:
                    key = r["clip_id"]
                    for ext, relative in sorted(r["media"].items()):
                        _add(tar, f"{key}.{ext}", (root / relative).read_bytes())
                    _add(tar, f"{key}.json", json.dumps(r, ensure_ascii=False, sort_keys=True).encode())
                    _add(tar, f"{key}.txt", r["transcript"].encode())
                    _add(tar, f"{key}.cls", str(CANONICAL.index(r["label"])).encode())
            shards.append(path)
    return shards


def write_parquet(records: Sequence[dict], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in sorted({r["split"] for r in records}):
        rows = [r for r in records if r["split"] == split]
        table = pa.table(
            {
                "clip_id": [r["clip_id"] for r in rows],
                "video_id": [r["video_id"] for r in rows],
                "start_s": [r["start_s"] for r in rows],
                "end_s": [r["end_s"] for r in rows],
                "transcript": [r["transcript"] for r in rows],
                "label": [r["label"] for r in rows],
                "label_id": [CANONICAL.index(r["label"]) for r in rows],
                "confidence": [r["confidence"] for r in rows],
                "language": [r["language"] for r in rows],
                "face_ratio": [r["face_ratio"] for r in rows],
                **{k: [r[k] for r in rows] for k in SOURCE_FIELDS},
                **{MEDIA[ext]: [r["media"].get(ext, "") for r in rows] for ext in MEDIA},
            }
        )
        path = out_dir / f"{split}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    return paths


def write_exports(
    records: Sequence[dict], root: Path, formats: Sequence[str], shard_size: int
) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    if "jsonl" in formats:
        out["jsonl"] = [write_jsonl(records, root / "metadata.jsonl")]
    if "csv" in formats:
        out["csv"] = [write_csv(records, root, split) for split in sorted({r["split"] for r in records})]
    if "webdataset" in formats:
        out["webdataset"] = write_webdataset(records, root, root / "webdataset", shard_size)
    if "parquet" in formats:
        out["parquet"] = write_parquet(records, root / "parquet")
    return out
