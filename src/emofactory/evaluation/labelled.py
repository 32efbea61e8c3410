"""Labelled sets to evaluate on: a CSV (`path,label`, optionally `speaker` and `modalities`; paths
relative to the CSV) or a folder whose file names carry the label in a known scheme: RAVDESS
(`03-01-05-01-02-01-12.wav`: the third field), CREMA-D (`1002_DFA_ANG_XX.mp3`), MEAD
(`M030_front_angry_level3_001.mp4`)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from emofactory.core.emotions import CANONICAL
from emofactory.core.errors import InvalidRequest

MEDIA = {".wav", ".mp3", ".flac", ".m4a", ".mp4", ".avi", ".mkv", ".mov", ".webm"}
# Corpus and common spellings of the classes -> canonical (calm is neutral; contempt has no class).
ALIASES = {c: c for c in CANONICAL} | {
    "angry": "anger", "ang": "anger", "disgusted": "disgust", "dis": "disgust", "fearful": "fear", "fea": "fear",
    "happy": "happiness", "hap": "happiness", "joy": "happiness", "sad": "sadness", "sadness": "sadness",
    "surprised": "surprise", "sur": "surprise", "neu": "neutral", "calm": "neutral",
}  # fmt: skip
RAVDESS_EMOTIONS = {"01": "neutral", "02": "neutral", "03": "happiness", "04": "sadness", "05": "anger"}
RAVDESS_EMOTIONS |= {"06": "fear", "07": "disgust", "08": "surprise"}
_RAVDESS = re.compile(r"(?:^|_)(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)(?:_|$)")
_CREMA = re.compile(r"^(\d{4})_[A-Z]{3}_([A-Z]{3})_[A-Z]{2}$")
_MEAD = re.compile(r"^([MW]\d{3})_[a-z]+_([a-z]+)_level\d")


@dataclass(frozen=True)
class Item:
    path: Path
    label: str
    speaker: str = ""
    # Which of audio / video the file has ("av", "audio", "video"; "" when not said: probed later).
    modalities: str = ""


def canonical(label: str, where: str) -> str:
    name = ALIASES.get(label.strip().lower())
    if name is None:
        raise InvalidRequest(where, f"unknown emotion {label[:40]!r} (known: {', '.join(CANONICAL)}, or a corpus code)")
    return name


def from_name(path: Path) -> Item | None:
    """The label a known naming scheme puts in the file name, else None."""
    stem = path.stem
    if m := _RAVDESS.search(stem):
        modality = {"01": "av", "02": "video", "03": "audio"}.get(m.group(1), "")
        return Item(path, RAVDESS_EMOTIONS[m.group(3)], f"ravdess:{m.group(7)}", modality)
    if m := _CREMA.match(stem):
        emotion = ALIASES.get(m.group(2).lower())
        return Item(path, emotion, f"crema_d:{m.group(1)}") if emotion else None
    if m := _MEAD.match(stem):
        emotion = ALIASES.get(m.group(2))
        return Item(path, emotion, f"mead:{m.group(1)}") if emotion else None
    return None


def read_csv(path: Path) -> list[Item]:
    items = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidRequest(str(path), f"needs columns path and label (missing: {', '.join(sorted(missing))})")
        for n, row in enumerate(reader, 2):
            if not (row.get("label") or "").strip():
                continue  # an item without a canonical label (contempt, say) is not evaluated
            media = (path.parent / row["path"]).resolve()
            if not media.is_file():
                raise InvalidRequest(f"{path}:{n}", f"no file {row['path']!r}")
            label = canonical(row["label"], f"{path}:{n}")
            items.append(Item(media, label, row.get("speaker") or "", (row.get("modalities") or "").strip()))
    return items


def read_folder(folder: Path) -> list[Item]:
    found = [from_name(p) for p in sorted(folder.rglob("*")) if p.suffix.lower() in MEDIA]
    items = [i for i in found if i is not None]
    if not items:
        raise InvalidRequest(str(folder), "holds no media named in a known scheme (RAVDESS, CREMA-D, MEAD)")
    return items


def labelled_set(path: Path | str) -> list[Item]:
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    raise InvalidRequest("path", f"{path} is neither a CSV of path,label nor a folder")
