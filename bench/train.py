"""Baselines trained on releases built from the test assets' labelled speech (`python -m bench.train
ASSETS [OUT]`), against the shipped SER CNN on the same test clips. Figures, never assertions.

1. "speakers": every labelled file with speech (RAVDESS, CREMA-D, MEAD's and RAVDESS's audio-visual
   clips), its own label, split 70/10/20 by speaker (no speaker in two splits). Audio (MFCC and
   Whisper-encoder features), text and fusion baselines on it.
2. "face teaches voice" (seed 002): the audio-visual clips are the train split, labelled by the
   factory's face model on their middle frame (their own labels unused); every speech-only file is
   the test split, with its own label. The student is an audio baseline; so is the SER CNN it is
   compared with.

Transcripts are the corpora's fixed sentences, the same for every emotion: the text baseline is a
check that nothing leaks (it should be at chance)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import wave
from functools import cache
from pathlib import Path

import numpy as np

from bench.asr import CREMA_D, RAVDESS
from emofactory.core.classes import CANONICAL
from emofactory.core.config import ModelsConfig
from emofactory.evaluation.metrics import scores
from emofactory.models.baseline import AUDIO_FEATURES
from emofactory.models.registry import load_facial_emotion, load_speech_emotion
from emofactory.stages.catalog.releases import assign_splits
from emofactory.stages.vision.config import VisionConfig
from emofactory.training.features import largest_face
from emofactory.training.run import train_release

RATE = 16000


def transcript(path: Path) -> str:
    parts = path.stem.split("-")
    if len(parts) == 7:
        return RAVDESS.get(parts[4], "")
    return CREMA_D.get(path.stem.split("_")[1], "") if path.suffix == ".mp3" else ""


def extract(source: Path, media: Path, clip_id: str, video: bool) -> dict:
    wav = media / f"{clip_id}.wav"
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(source), "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE), w.writeframes(pcm)
    found = {"wav": f"media/{wav.name}"}
    if video:
        duration = len(pcm) / 2 / RATE
        jpg = media / f"{clip_id}.jpg"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-ss",
                f"{duration / 2:.2f}",
                "-i",
                str(source),
                "-frames:v",
                "1",
                str(jpg),
            ],
            check=True,
        )
        found["jpg"] = f"media/{jpg.name}"
    return found


@cache
def face_models():
    """MTCNN and the factory's default face model (the mean of mini-XCEPTION and facex), loaded once."""
    from emofactory.models.mtcnn import FaceDetector

    return FaceDetector(), load_facial_emotion(ModelsConfig())


def face_scores(root: Path, frame: str) -> dict:
    """The factory's face model on the largest face in the frame, cropped as the vision stage does."""
    detector, model = face_models()
    crop = largest_face(detector, root / frame, margin=VisionConfig().face_margin)
    if crop is None:
        return {}
    probs = model({"faces": crop[None]})["probabilities"][0]
    return dict(zip(CANONICAL, map(float, probs)))


def labelled_speech(assets: Path, root: Path) -> list[dict]:
    (root / "media").mkdir(parents=True, exist_ok=True)
    records = []
    for row in csv.DictReader((assets / "labelled.csv").open()):
        if row["modalities"] not in ("audio", "av") or not row["label"]:
            continue
        source, clip_id = assets / row["path"], Path(row["path"]).stem
        media = extract(source, root / "media", clip_id, row["modalities"] == "av")
        record = {"clip_id": clip_id, "label": row["label"], "group": f"{row['corpus']}:{row['speaker']}"}
        record |= {"transcript": transcript(source), "media": media, "start_s": 0.0, "end_s": 1.0, "confidence": 1.0}
        record["scores"] = {"face": face_scores(root, media["jpg"])} if "jpg" in media else {}
        record["av"] = row["modalities"] == "av"
        records.append(record)
    return records


def write_release(root: Path, release_id: str, records: list[dict]) -> Path:
    (root / "manifest.json").write_text(json.dumps({"release_id": release_id, "name": release_id, "clips": records}))
    return root


def ser_cnn(root: Path, records: list[dict], weights: Path) -> dict:
    model = load_speech_emotion(ModelsConfig(speech_emotion_path=str(weights)))
    test = [r for r in records if r["split"] == "test"]
    predicted = []
    for r in test:
        with wave.open(str(root / r["media"]["wav"])) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        probs = model({"audio": audio[None], "sample_rate": np.array([[RATE]])})["probabilities"][0]
        predicted.append(CANONICAL[int(probs.argmax())])
    return scores([r["label"] for r in test], predicted)


def show(title: str, found: dict) -> dict:
    print(f"\n{title}: n {found['n']}, accuracy {found['accuracy']:.3f}, UAR {found['uar']:.3f}, "
          f"weighted F1 {found['weighted_f1']:.3f}")  # fmt: skip
    for name, c in found["per_class"].items():
        print(f"  {name:10s} P {c['precision']:.2f} R {c['recall']:.2f} F1 {c['f1']:.2f} (n {c['support']})")
    return found


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m bench.train ASSETS [OUT]  (the test assets' folder)")
    assets, out = Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/train")
    weights = assets / "ser_weights" / "marcogdepinto_Emotion_Voice_Detection_Model.h5"
    base = out / "speakers"
    records = labelled_speech(assets, base)
    sizes = {}
    for r in records:
        sizes[r["group"]] = sizes.get(r["group"], 0) + 1
    splits = assign_splits(sizes, (0.7, 0.1, 0.2), seed=0)
    for r in records:
        r["split"] = splits[r["group"]]
    figures = {"speakers": {}, "face_teaches_voice": {}}
    write_release(base, "assets-speakers", records)
    for kind in AUDIO_FEATURES:
        result = train_release(base, "fusion", base / "baselines" / f"fusion-{kind}", audio_features=kind)
        for name, found in result["test"].items():
            if name != "face" and (kind == "mfcc" or name != "text"):
                figures["speakers"][f"{name}-{kind}"] = show(f"speakers / {name} baseline ({kind} audio)", found)
    figures["speakers"]["ser_cnn"] = show("speakers / shipped SER CNN", ser_cnn(base, records, weights))

    taught = out / "face_teaches_voice"
    (taught / "media").mkdir(parents=True, exist_ok=True)
    for r in records:
        r["split"] = "train" if r["av"] else "test"  # six clips: no validation split to spare
        for media in r["media"].values():
            target = taught / media
            if not target.exists():
                target.symlink_to((base / media).resolve())
    write_release(taught, "assets-face-teaches-voice", records)
    for kind in AUDIO_FEATURES:
        result = train_release(taught, "audio", taught / "baselines" / f"audio-from-face-{kind}", teacher="face",
                               teacher_min_confidence=0.0, audio_features=kind)  # fmt: skip
        print(f"\nteacher labels on the audio-visual clips: {result['clips']['audio']}")
        figures["face_teaches_voice"][f"student-{kind}"] = show(
            f"face teaches voice / student ({kind})", result["test"]["audio"]
        )
    figures["face_teaches_voice"]["ser_cnn"] = show("face teaches voice / SER CNN", ser_cnn(taught, records, weights))
    (out / "train.json").write_text(json.dumps(figures, indent=1))
    print(f"\nfigures in {out / 'train.json'}")


if __name__ == "__main__":
    main()
