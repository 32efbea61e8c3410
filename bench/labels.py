"""Per-class agreement of each modality and each fusion strategy with the labels of the labelled
clips in the shared assets (RAVDESS speech and audio-visual clips, CREMA-D, MEAD), and the yield
(kept / total). Usage: python -m bench.labels  (needs EMOFACTORY_ASSETS or ../shared/assets and
EMO_MODELS__SPEECH_EMOTION_PATH, defaulting to the assets' SER weights)."""

from __future__ import annotations

import os
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from dev.assets import ASSETS
from emofactory.core.config import ModelsConfig
from emofactory.core.emotions import CANONICAL, emotion_name
from emofactory.core.media import probe
from emofactory.models.backends import backend_for
from emofactory.stages.labeler.config import LabelerConfig
from emofactory.stages.labeler.labels import label_segments
from emofactory.stages.vision.analysis import analyze_video
from emofactory.stages.vision.config import VisionConfig
from emofactory.stages.vision.stage import summarize
from emofactory.v1 import common_pb2, labeler_pb2

RAVDESS = {"01": "neutral", "02": "neutral", "03": "happiness", "04": "sadness", "05": "anger", "06": "fear"}
RAVDESS |= {"07": "disgust", "08": "surprise"}
CREMA = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral", "SAD": "sadness"}
MEAD = {"angry": "anger", "disgusted": "disgust", "fear": "fear", "happy": "happiness", "neutral": "neutral"}
MEAD |= {"sad": "sadness", "surprised": "surprise"}


def pcm16k(path: Path) -> np.ndarray:
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, "<i2")


def clips() -> list[tuple[Path, str]]:
    """(clip, canonical label): RAVDESS speech and audio-visual, CREMA-D speech, MEAD faces."""
    out = [(p, RAVDESS[p.stem.split("-")[2]]) for p in sorted((ASSETS / "ravdess/wav").glob("*.wav"))]
    out += [(p, CREMA[p.stem.split("_")[2]]) for p in sorted((ASSETS / "crema_d").glob("*.mp3"))]
    out += [(p, RAVDESS[p.stem.split("-")[2]]) for p in sorted((ASSETS / "ravdess/av_mp4").glob("*.mp4"))]
    mead = [p for p in sorted((ASSETS / "mead").glob("*.mp4")) if p.stem.split("_")[2] in MEAD]
    return out + [(p, MEAD[p.stem.split("_")[2]]) for p in mead]


def evidence_for(path: Path, backend) -> tuple[labeler_pb2.SegmentEvidence, np.ndarray | None]:
    media = probe(path)
    segment = common_pb2.Segment(segment_id="c-0-1", start_s=0.0, end_s=media.duration_s)
    e = labeler_pb2.SegmentEvidence(segment=segment)
    if media.has_video:
        config = VisionConfig(fps=2)
        (faces,) = analyze_video(str(path), media, [segment], config, backend)
        v = summarize(faces, config)
        e.face_ratio, e.face_vote = v.face_ratio, v.vote
        if v.face_frames:
            e.face.CopyFrom(v.face)
    return e, pcm16k(path) if media.has_audio else None


def top(scores: common_pb2.EmotionScores) -> str:
    return max(CANONICAL, key=lambda c: getattr(scores, c))


def main() -> None:
    os.environ.setdefault(
        "EMO_MODELS__SPEECH_EMOTION_PATH", str(ASSETS / "ser_weights/marcogdepinto_Emotion_Voice_Detection_Model.h5")
    )
    from emofactory.core.config import load_section

    backend = backend_for(load_section(ModelsConfig, "models"))
    strategies = {
        "fusion face+audio": LabelerConfig(modalities=("audio", "face"), min_face_ratio=0, neutral_share=10),
        "vote (face, audio check)": LabelerConfig(strategy="vote", min_face_ratio=0, neutral_share=10),
    }
    hits: dict[str, Counter] = defaultdict(Counter)
    totals: dict[str, Counter] = defaultdict(Counter)
    kept: dict[str, Counter] = defaultdict(Counter)
    kept_right: dict[str, Counter] = defaultdict(Counter)
    for path, truth in clips():
        e, pcm = evidence_for(path, backend)
        (audio_only,) = label_segments([e], pcm, 16000, LabelerConfig(modalities=("audio",)), backend)
        rows = {}
        if audio_only.HasField("audio"):
            rows["audio"] = (top(audio_only.audio), True)
        if e.HasField("face"):
            rows["face"] = (top(e.face), True)
            for name, config in strategies.items():
                if pcm is not None:
                    (x,) = label_segments([e], pcm, 16000, config, backend)
                    rows[name] = (emotion_name(x.label.emotion), x.label.kept)
        for name, (guess, was_kept) in rows.items():
            totals[name][truth] += 1
            kept[name][truth] += was_kept
            hits[name][truth] += guess == truth
            kept_right[name][truth] += was_kept and guess == truth
    header = " ".join(f"{c[:5]:>6s}" for c in CANONICAL)
    print(f"\n{'modality / strategy':26s} {header}    all  kept  right of kept")
    for name in totals:
        cells = [f"{hits[name][c]}/{totals[name][c]}" if totals[name][c] else "-" for c in CANONICAL]
        n, h = sum(totals[name].values()), sum(hits[name].values())
        k, kr = sum(kept[name].values()), sum(kept_right[name].values())
        print(f"{name:26s} " + " ".join(f"{x:>6s}" for x in cells) + f" {h / n:5.0%} {k:2d}/{n:<3d} {kr}/{k}")
    print("\nPer class: right / clips (before filters). kept: labels that pass every filter (yield).")


if __name__ == "__main__":
    main()
