"""Models in-process vs on Triton (the local CPU server with deploy/triton/models, or one at
EMO_MODELS__TRITON_URL): face frames/s (MTCNN on 427x240 frames, 8 per request), faces/s through
FER, audio seconds/s through the speech-emotion CNN and through Whisper (one clip per request),
texts/s, with 1 and 4 workers calling at once, and the p50 latency of one call. Writes
bench/out/triton.json.
Usage: python -m bench.triton"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from skimage import data

from bench.stages import ASSETS, OUT
from dev.triton import TritonServer
from emofactory.core.config import ModelsConfig
from emofactory.models.backends import backend_for

SER = ASSETS / "ser_weights" / "marcogdepinto_Emotion_Voice_Detection_Model.h5"
JFK = ASSETS / "speech_en" / "faster_whisper_jfk.flac"
ROUNDS = 12


def workloads() -> dict[str, tuple[str, dict, float, str, int]]:
    """name -> (model, one call's inputs, units per call, unit, rounds per worker)."""
    frame = data.astronaut()[16:256, 42:469]  # 427x240, one face
    rng = np.random.RandomState(0)
    faces = rng.randint(0, 255, (64, 112, 112, 3)).astype(np.uint8)
    texts = np.array([b"I can't believe you did this to me"] * 16, dtype=object)
    loads = {
        "face detector": ("face_detector", {"images": np.stack([frame] * 8)}, 8, "frames", ROUNDS),
        "facial emotion": ("facial_emotion", {"faces": faces}, 64, "faces", ROUNDS),
        "text emotion": ("text_emotion", {"texts": texts}, 16, "texts", ROUNDS),
    }
    if SER.is_file():
        clip = (rng.randn(1, 48000) * 0.1).astype(np.float32)
        inputs = {"audio": clip, "sample_rate": np.array([[16000]], np.int32)}
        loads["speech emotion"] = ("speech_emotion", inputs, 3.0, "audio s", ROUNDS)
    if JFK.is_file():  # 11 s of real speech
        cmd = ["ffmpeg", "-v", "error", "-i", str(JFK), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
        speech = np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.float32)[None]
        inputs = {"audio": speech, "language": np.array([[b"en"]], dtype=object)}
        loads["whisper"] = ("whisper", inputs, speech.shape[1] / 16000, "audio s", 2)
    return loads


def measure(backend, model: str, inputs: dict, workers: int, rounds: int) -> tuple[float, float]:
    """(calls/s with `workers` calling at once, p50 seconds of one call alone)."""
    backend.infer(model, inputs)  # loads / warms the model
    alone = []
    for _ in range(3):
        started = time.perf_counter()
        backend.infer(model, inputs)
        alone.append(time.perf_counter() - started)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: backend.infer(model, inputs), range(rounds * workers)))
    return rounds * workers / (time.perf_counter() - started), statistics.median(alone)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    inprocess = backend_for(ModelsConfig(speech_emotion_path=str(SER) if SER.is_file() else ""))
    loads = workloads()
    url = os.environ.get("EMO_MODELS__TRITON_URL")
    server = None
    if not url:
        env = {"EMO_MODELS__SPEECH_EMOTION_PATH": str(SER)} if SER.is_file() else {}
        server = TritonServer(tempfile.mkdtemp(), tuple(m for m, *_ in loads.values()), env=env)
        server.start()
        url = server.url
    on_triton = backend_for(ModelsConfig(backend="triton", triton_url=url))
    rows = []
    try:
        for name, (model, inputs, units, unit, rounds) in loads.items():
            for backend_name, backend in (("in-process", inprocess), ("triton", on_triton)):
                for workers in (1, 4):
                    rate, p50 = measure(backend, model, inputs, workers, rounds)
                    rows.append(
                        {"model": name, "backend": backend_name, "workers": workers, "unit": unit,
                         "per_s": rate * units, "p50_ms": p50 * 1000}
                    )  # fmt: skip
                    figures = f"{rate * units:8.1f} {unit}/s  p50 {p50 * 1000:7.1f} ms"
                    print(f"{name:15} {backend_name:10} x{workers}  {figures}", flush=True)
    finally:
        if server is not None:
            server.stop()
    (OUT / "triton.json").write_text(json.dumps({"triton_url": url, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
