"""ASR engines behind one interface: `recognize(clips, rate, language)` gives, per clip, what was
said (text and word times relative to the clip) or the error that stopped it. A TransientError is
worth retrying (network, timeout); any other error is final for that clip."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from emofactory.core.backend import ModelBackend
from emofactory.core.errors import PermanentError, StageError, TransientError
from emofactory.stages.asr.config import AsrConfig


@dataclass
class Recognized:
    text: str
    # (word, start_s, end_s, confidence), times relative to the clip's start.
    words: list[tuple[str, float, float, float]] = field(default_factory=list)


Outcome = Recognized | StageError


class Engine(Protocol):
    name: str

    def recognize(self, clips: Sequence[np.ndarray], rate: int, language: str) -> list[Outcome]: ...


NO_SPEECH = "no speech recognized"


class SphinxEngine:
    """pocketsphinx, with one decoder loaded once and reused for every clip (SpeechRecognition's
    recognize_sphinx builds a new decoder per call, about 0.3 s each). English only, unless
    sphinx_model_dir names another language's model."""

    name = "sphinx"
    FRAMES_PER_S = 100  # pocketsphinx's default frame rate

    def __init__(self, config: AsrConfig):
        from pocketsphinx import Decoder

        self.custom = bool(config.sphinx_model_dir)
        if self.custom:
            model = Path(config.sphinx_model_dir)
            paths = {
                "hmm": model / "acoustic-model",
                "lm": model / "language-model.lm.bin",
                "dict": model / "pronounciation-dictionary.dict",
            }
            missing = [str(p) for p in paths.values() if not p.exists()]
            if missing:
                raise PermanentError(f"sphinx model incomplete, missing: {', '.join(missing)}")
            self.decoder = Decoder(logfn=os.devnull, **{k: str(v) for k, v in paths.items()})
        else:
            self.decoder = Decoder(logfn=os.devnull)  # the en-US model inside the pocketsphinx wheel
        self.lock = threading.Lock()

    def _one(self, clip: np.ndarray) -> Outcome:
        with self.lock:
            self.decoder.start_utt()
            self.decoder.process_raw(clip.astype("<i2").tobytes(), full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            segs = list(self.decoder.seg())
        words = [
            (s.word.split("(")[0], s.start_frame / self.FRAMES_PER_S, (s.end_frame + 1) / self.FRAMES_PER_S, s.prob)
            for s in segs
            if not s.word.startswith(("<", "[", "++"))
        ]
        if hyp is None or not hyp.hypstr.strip():
            return PermanentError(NO_SPEECH)
        return Recognized(hyp.hypstr.strip(), [(w, a, b, float(p)) for w, a, b, p in words])

    def recognize(self, clips, rate, language):
        if rate != 16000:
            return [PermanentError(f"sphinx needs 16 kHz audio, not {rate} Hz")] * len(clips)
        if not self.custom and not language.lower().startswith("en"):
            reason = (
                f"the sphinx engine has an English model only (job language {language}): "
                "choose engine google or whisper, or set asr.sphinx_model_dir"
            )
            return [PermanentError(reason)] * len(clips)
        return [self._one(clip) for clip in clips]


class GoogleEngine:
    """Google's web speech API through SpeechRecognition (seed 000 uses it with ar-EG): any
    language code; needs the network. Requests go out batch_size at a time."""

    name = "google"

    def __init__(self, config: AsrConfig):
        import speech_recognition as sr

        self.sr = sr
        self.config = config

    def _one(self, clip: np.ndarray, rate: int, language: str) -> Outcome:
        recognizer = self.sr.Recognizer()
        recognizer.operation_timeout = self.config.timeout_s
        audio = self.sr.AudioData(clip.astype("<i2").tobytes(), rate, 2)
        try:
            text = recognizer.recognize_google(audio, key=self.config.google_api_key or None, language=language)
        except self.sr.UnknownValueError:
            return PermanentError(NO_SPEECH)
        except self.sr.RequestError as exc:
            # "recognition connection failed" is the network; other request errors (a bad key,
            # a refused language) will not change on retry.
            if "connection failed" in str(exc) or "timed out" in str(exc):
                return TransientError(f"google speech API unreachable: {exc}")
            return PermanentError(f"google speech API refused the request: {exc}")
        except OSError as exc:  # socket timeouts surface as OSError subclasses
            return TransientError(f"google speech API unreachable: {exc}")
        return Recognized(text.strip()) if text.strip() else PermanentError(NO_SPEECH)

    def recognize(self, clips, rate, language):
        with ThreadPoolExecutor(max_workers=max(1, self.config.batch_size)) as pool:
            return list(pool.map(lambda clip: self._one(clip, rate, language), clips))


class WhisperEngine:
    """Whisper behind the model backend (services/models/whisper.py, in-process or Triton's
    `whisper` model): float32 audio in [-1, 1] at 16 kHz and the language in; text and word times
    out. One clip per request, so no clip is padded to another's length; Triton batches requests."""

    name = "whisper"
    MODEL = "whisper"

    def __init__(self, config: AsrConfig, backend: ModelBackend):
        self.backend = backend

    @staticmethod
    def _inputs(clip: np.ndarray, language: str) -> dict[str, np.ndarray]:
        return {
            "audio": (clip.astype(np.float32) / 32768.0)[None],
            "language": np.array([[language.split("-")[0].encode()]], dtype=object),
        }

    @staticmethod
    def _outcome(out: dict[str, np.ndarray]) -> Outcome:
        text = out["text"].reshape(-1)[0]
        text = (text.decode() if isinstance(text, bytes) else str(text)).strip()
        words = [
            (w.decode() if isinstance(w, bytes) else str(w), float(a), float(b), float(p))
            for w, (a, b), p in zip(
                out["words"].reshape(-1), out["word_times"].reshape(-1, 2), out["word_probs"].reshape(-1)
            )
        ]
        words = [w for w in words if w[0]]  # rows are padded with empty words
        return Recognized(text, words) if text else PermanentError(NO_SPEECH)

    def _one(self, inputs: dict[str, np.ndarray]) -> Outcome:
        try:
            return self._outcome(self.backend.infer(self.MODEL, inputs))
        except StageError as exc:
            return exc

    def recognize(self, clips, rate, language):
        if rate != 16000:
            return [PermanentError(f"whisper needs 16 kHz audio, not {rate} Hz")] * len(clips)
        requests = [self._inputs(clip, language) for clip in clips]
        try:
            outputs = self.backend.infer_each(self.MODEL, requests)
        except TransientError as exc:  # the server, not a clip: every clip is retried
            return [exc] * len(clips)
        except StageError:  # some clip was refused: find which, one at a time
            return [self._one(inputs) for inputs in requests]
        return [self._outcome(out) for out in outputs]


class NoEngine:
    """Transcription switched off for a job: every segment is kept, flagged with why."""

    name = "none"

    def recognize(self, clips, rate, language):
        return [PermanentError("transcription disabled (asr engine none)")] * len(clips)


def make_engine(config: AsrConfig, backend: ModelBackend | None = None) -> Engine:
    if config.engine == "none":
        return NoEngine()
    if config.engine == "sphinx":
        return SphinxEngine(config)
    if config.engine == "google":
        return GoogleEngine(config)
    if config.engine == "whisper":
        if backend is None:
            raise PermanentError("the whisper engine needs a model backend")
        return WhisperEngine(config, backend)
    raise PermanentError(f"unknown ASR engine {config.engine!r}")
