"""Voice activity engines: each turns 16 kHz int16 PCM into one speech flag per fixed-length frame."""

from __future__ import annotations

from functools import cache

import numpy as np
import webrtcvad

from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.stages.vad.config import VadConfig

SILERO_CHUNK = 512
SILERO_CONTEXT = 64


def webrtc_flags(pcm: np.ndarray, sample_rate: int, config: VadConfig) -> tuple[np.ndarray, float]:
    """(flags, frame seconds): WebRTC VAD on frame_ms frames (seed 000 §3.3); the config was checked
    where it entered (checked_options)."""
    vad = webrtcvad.Vad(config.aggressiveness)
    step = sample_rate * config.frame_ms // 1000
    data = pcm.astype("<i2").tobytes()
    count = len(pcm) // step
    flags = np.fromiter(
        (vad.is_speech(data[2 * i * step : 2 * (i + 1) * step], sample_rate) for i in range(count)), bool, count
    )
    return flags, step / sample_rate


@cache
def silero_session(path: str):
    import onnxruntime

    if not path:
        raise PermanentError("the silero engine needs vad.silero_model_path (EMO_VAD__SILERO_MODEL_PATH)")
    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise PermanentError(f"cannot load the Silero VAD model from {path!r}: {exc}") from exc


def silero_flags(pcm: np.ndarray, sample_rate: int, config: VadConfig) -> tuple[np.ndarray, float]:
    """(flags, frame seconds): Silero VAD v5/v6 on 32 ms chunks, each with the 64 samples before it."""
    if sample_rate != 16000:
        raise InvalidRequest("sample_rate", f"the silero engine takes 16 kHz audio, not {sample_rate}")
    session = silero_session(config.silero_model_path)
    count = len(pcm) // SILERO_CHUNK
    if count == 0:
        return np.zeros(0, bool), SILERO_CHUNK / sample_rate
    chunks = (pcm[: count * SILERO_CHUNK].astype(np.float32) / 32768.0).reshape(count, SILERO_CHUNK)
    context = np.zeros((count, SILERO_CONTEXT), np.float32)
    context[1:] = chunks[:-1, -SILERO_CONTEXT:]
    batch = np.concatenate([context, chunks], axis=1)
    state = np.zeros((1, 1, 128), np.float32)
    probs, _, _ = session.run(None, {"input": batch, "h": state, "c": state})
    return np.asarray(probs).reshape(-1) >= config.silero_threshold, SILERO_CHUNK / sample_rate


ENGINES = {"webrtc": webrtc_flags, "silero": silero_flags}


def speech_flags(pcm: np.ndarray, sample_rate: int, config: VadConfig) -> tuple[np.ndarray, float]:
    engine = ENGINES.get(config.engine)
    if engine is None:
        raise InvalidRequest("engine", f"unknown VAD engine {config.engine!r} (known: {', '.join(ENGINES)})")
    return engine(pcm, sample_rate, config)
