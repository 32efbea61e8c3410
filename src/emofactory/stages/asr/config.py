from __future__ import annotations

from dataclasses import dataclass

from emofactory.core.config import options_over
from emofactory.core.errors import InvalidRequest

ENGINES = ("sphinx", "google", "whisper", "none")


@dataclass(frozen=True)
class AsrConfig:
    """Transcription per speech segment (seed 000 §3.6; dialogue mode: seed 003 §3.1)."""

    # "whisper" (Whisper through the model backend, in-process or on Triton, seed 003: tiny.en for
    # English, Whisper base for the other 98 languages; models.whisper_path, whisper_multilingual_path),
    # "sphinx" (pocketsphinx, offline, en-US), "google" (SpeechRecognition's web API, any language,
    # seed 000), or "none" (no transcripts: every segment is flagged "transcription disabled"; labels
    # fuse the other modalities). Whisper by the numbers: JFK's 22 words, tiny.en 0 wrong in 0.9 s,
    # sphinx 5 wrong in 3.4 s.
    engine: str = "whisper"
    # BCP-47 language when the job names none.
    language: str = "en-US"
    # Retries of a segment after a transient engine error, waiting backoff_s, 2 x backoff_s, ...
    retries: int = 2
    backoff_s: float = 1.0
    # Seconds one web request may take (google).
    timeout_s: float = 15.0
    # Segments in flight at once (google: parallel requests; whisper: the batch sent to the model).
    batch_size: int = 8
    # Google's key; empty: SpeechRecognition's shared default key.
    google_api_key: str = ""
    # A pocketsphinx model for another language: a folder with acoustic-model/,
    # language-model.lm.bin and pronounciation-dictionary.dict. Empty: the English model in the wheel.
    sphinx_model_dir: str = ""
    # Clips quieter than this (RMS, dB full scale) are flagged silent without asking the engine
    # (sphinx hears words in digital silence).
    silence_dbfs: float = -60.0
    # SpEmoC dialogue segmentation: keep sentences of >= dialogue_min_words words that end with one
    # of dialogue_terminal; with word times, segments are re-cut at sentence ends.
    dialogue_mode: bool = False
    dialogue_min_words: int = 12
    dialogue_terminal: str = ".!?…"


def checked_options(defaults: AsrConfig, options) -> AsrConfig:
    """The request's options over the defaults, with bad values named by field."""
    config = options_over(defaults, options)
    if config.engine not in ENGINES:
        raise InvalidRequest("options.engine", f"must be one of {', '.join(ENGINES)}, not {config.engine!r}")
    if config.retries < 0:
        raise InvalidRequest("options.retries", "must not be negative")
    if config.dialogue_min_words < 1:
        raise InvalidRequest("options.dialogue_min_words", "must be at least 1")
    return config
