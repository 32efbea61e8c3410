"""A baseline `emofactory train` made, as a model: a folder with its card (`baseline.json`: format,
modality, features, classes, inputs, how it was trained) and its weights (`model.pt`); standardised
input, one hidden layer, seven canonical classes. Loaded by path like any model: an audio baseline is
a speech-emotion model, computing the features it learned from (`audio_vector`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emofactory.core.classes import CANONICAL
from emofactory.core.mfcc import librosa_mfcc

CARD, WEIGHTS = "baseline.json", "model.pt"
FORMAT = "emofactory-baseline"
# The first is the default: on the assets' labelled speech (bench.train) an audio baseline on Whisper's
# encoder reached UAR 0.45 on 14 unseen speakers' clips against 0.29 on MFCCs, and a face-taught
# student 0.28 against 0.17 on 58 clips; it costs about 0.3 s a clip on 2 cores.
AUDIO_FEATURES = ("whisper", "mfcc")
AUDIO_RATE = 16000
N_MFCC = 40
WHISPER_WINDOW, WHISPER_FRAMES_PER_S = 3000, 50  # mel frames the encoder hears; its states per second


class Baseline(nn.Module):
    def __init__(self, inputs: int, hidden: int, dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(inputs))
        self.register_buffer("std", torch.ones(inputs))
        self.net = nn.Sequential(
            nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, len(CANONICAL))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def probabilities(model: Baseline, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor(x, dtype=torch.float32)), 1).numpy()


def is_baseline(folder: Path) -> bool:
    return (folder / CARD).is_file() and (folder / WEIGHTS).is_file()


def load(folder: Path) -> tuple[Baseline, dict]:
    card = json.loads((folder / CARD).read_text())
    if card.get("format") != FORMAT or card.get("classes") != list(CANONICAL):
        raise ValueError(f"{folder / CARD}: not an {FORMAT} card over the canonical classes")
    model = Baseline(int(card["inputs"]), int(card["train"]["hidden"]), float(card["train"]["dropout"]))
    model.load_state_dict(torch.load(folder / WEIGHTS, weights_only=True))
    return model.eval(), card


@cache
def whisper_encoder():
    """The ASR stage's English Whisper (CTranslate2), for its encoder alone."""
    from faster_whisper import WhisperModel

    from emofactory.core.config import ModelsConfig, load_section
    from emofactory.models.whisper import whisper_model_dir

    config = load_section(ModelsConfig, "models")
    return WhisperModel(str(whisper_model_dir(config)), device="cpu", compute_type="int8", cpu_threads=config.threads)


def whisper_vector(x: np.ndarray) -> np.ndarray:
    """[2 x width]: the mean and standard deviation of the encoder's states over the clip's own
    frames (its 30 s window is padded, as in transcription; clips longer than that are cut)."""
    import ctranslate2

    model = whisper_encoder()
    mel = model.feature_extractor(x)[:, :WHISPER_WINDOW]
    frames = mel.shape[1]
    mel = np.pad(mel, ((0, 0), (0, WHISPER_WINDOW - frames)))
    states = np.array(model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))))[0]
    own = states[: max(1, min(len(states), round(len(x) / AUDIO_RATE * WHISPER_FRAMES_PER_S)))]
    return np.concatenate([own.mean(axis=0), own.std(axis=0)]).astype(np.float32)


def audio_vector(samples: np.ndarray, rate: int, kind: str) -> np.ndarray:
    """One clip's audio features (float samples in [-1, 1]): `mfcc`, [80], each of 40 MFCCs' mean
    and standard deviation; `whisper`, [2 x the encoder's width], see whisper_vector."""
    x = np.asarray(samples, np.float32)
    if rate != AUDIO_RATE:
        import soxr

        x = soxr.resample(x, rate, AUDIO_RATE, "HQ")
    if kind == "whisper":
        return whisper_vector(x)
    if kind != "mfcc":
        raise ValueError(f"audio features must be one of {', '.join(AUDIO_FEATURES)}, not {kind!r}")
    mfcc = librosa_mfcc(x, AUDIO_RATE, N_MFCC)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


def load_audio_baseline(folder: Path):
    """An audio baseline as the labeler's speech-emotion model: audio float32 [N, samples] at
    sample_rate [N, 1] -> canonical probabilities, through the features it was trained on."""
    model, card = load(folder)
    if card.get("modality") != "audio":
        raise ValueError(f"{folder}: a {card.get('modality')} baseline, not an audio one")

    def run(inputs):
        rate = int(np.asarray(inputs["sample_rate"]).reshape(-1)[0])
        clips = np.asarray(inputs["audio"], np.float32)
        features = np.stack([audio_vector(clip, rate, card["features"]) for clip in clips])
        return {"probabilities": probabilities(model, features).astype(np.float32)}

    return run
