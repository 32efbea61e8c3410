"""Whisper's word error rate and speed on real English speech with known words: the test assets'
RAVDESS statements, CREMA-D sentences and JFK (given by path: `python -m bench.asr ASSETS`), one clip
at a time as the asr stage sends them, with the default model (tiny.en from its wheel, or
`EMO_MODELS__WHISPER_PATH`): the default settings, beam 1 instead of 5, and every clip padded to
Whisper's whole 30 s window (models.whisper_window_pad_s 30, faster-whisper's way). Figures, never
assertions.

Tried and measured here (issue 19), not adopted: faster-whisper's batched pipeline, 8 clips a batch
(WER 16.5 % against 5.4 %, no faster: each clip is still a padded 30 s window for the encoder), and
several clips packed into one 30 s window, words given back by their times (WER 32.7 %, twice as
slow)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from emofactory.core.config import ModelsConfig, load_section
from emofactory.models.whisper import Whisper

RAVDESS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
CREMA_D = {
    "IEO": "it's eleven o'clock", "TIE": "that is exactly what happened", "IOM": "i'm on my way to the meeting",
    "IWW": "i wonder what this is about", "TAI": "the airplane is almost full", "MTI": "maybe tomorrow it will be cold",
    "IWL": "i would like a new alarm clock", "ITH": "i think i have a doctor's appointment",
    "DFA": "don't forget a jacket", "ITS": "i think i've seen this before", "TSI": "the surface is slick",
    "WSI": "we'll stop in a couple of minutes",
}  # fmt: skip
JFK = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def corpus(assets: Path) -> list[tuple[Path, str]]:
    """(audio file, its words): every RAVDESS file with speech, every CREMA-D clip, JFK."""
    items = []
    for path in sorted(assets.glob("ravdess/**/*")):
        fields = re.search(r"(\d\d)-(\d\d)-\d\d-\d\d-(\d\d)-\d\d-\d\d", path.name)
        speech = fields and fields.group(1) in ("01", "03") and "videoonly" not in path.name  # AV or audio-only
        if speech and path.suffix in (".wav", ".mp4"):
            items.append((path, RAVDESS[fields.group(3)]))
    for path in sorted(assets.glob("crema_d/*.mp3")):
        items.append((path, CREMA_D[path.name.split("_")[1]]))
    return items + [(assets / "speech_en" / "faster_whisper_jfk.flac", JFK)]


def pcm16k(path: Path) -> np.ndarray:
    command = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(command, capture_output=True, check=True).stdout, np.float32)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("’", "'")).split()


def errors(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level edit distance (substitutions, deletions, insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m bench.asr ASSETS  (the test assets' folder)")
    assets = Path(sys.argv[1])
    items = corpus(assets)
    clips = [pcm16k(path) for path, _ in items]
    references = [words(text) for _, text in items]
    base = load_section(ModelsConfig, "models")
    variants = {
        "default": base,
        "beam 1": dataclasses.replace(base, whisper_beam_size=1),
        "30 s window": dataclasses.replace(base, whisper_window_pad_s=30.0),
    }
    results = {}
    for variant, config in variants.items():
        model = Whisper(config)
        for run in (1, 2):  # the second without the first's warm-up
            started = time.perf_counter()
            texts = [model.transcribe(clip, "en")[0] for clip in clips]
            seconds = time.perf_counter() - started
            wrong = sum(errors(ref, words(text)) for ref, text in zip(references, texts))
            total = sum(map(len, references))
            results[f"{variant}, run {run}"] = {
                "wer": round(wrong / total, 4),
                "wrong": wrong,
                "words": total,
                "seconds": round(seconds, 2),
            }
    audio_s = sum(len(c) for c in clips) / 16000
    model_name = base.whisper_path or "tiny.en"
    print(f"{len(items)} clips, {audio_s:.0f} s of speech, {sum(map(len, references))} words ({model_name})")
    for name, row in results.items():
        speed = audio_s / row["seconds"]
        wer = f"WER {row['wer']:.1%} ({row['wrong']} words wrong)"
        print(f"  {name}: {wer}, {row['seconds']:.1f} s ({speed:.0f}x realtime)")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "asr.json").write_text(json.dumps({"clips": len(items), "audio_s": audio_s, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
