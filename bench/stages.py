"""Seconds per stage (ingest download, audio extraction, vad, vision with and without its
active-speaker check) on a generated 10-minute 480p video, beside the FFmpeg full-decode floor.
Prints a table and writes bench/out/stages.json.
Usage: python -m bench.stages [VIDEO]  (default: generated)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dev import sample
from dev.assets import ASSETS
from dev.webserver import serve_directory
from emofactory.core.config import ModelsConfig
from emofactory.core.media import probe, read_pcm
from emofactory.models.backends import backend_for
from emofactory.stages.audio.config import AudioConfig
from emofactory.stages.audio.extract import extract_audio
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.ingest.stage import fetch
from emofactory.stages.vad.config import VadConfig
from emofactory.stages.vad.segmentation import segment_speech, to_segments
from emofactory.stages.vision.analysis import analyze_video
from emofactory.stages.vision.config import VisionConfig
from emofactory.v1 import common_pb2

OUT = Path(__file__).parent / "out"


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if len(sys.argv) > 1:
            video = Path(sys.argv[1]).resolve()
        else:
            video = OUT / "bench_10min_480p.mp4"
            if not video.exists():
                print("generating a 10-minute 480p video with speech and pauses ...", flush=True)
                sample.sample_video(video, repeat=40, size="854x480")
        duration = probe(video).duration_s
        rows = {}
        decode = ["ffmpeg", "-loglevel", "error", "-i", str(video), "-f", "null", "-"]
        rows["decode floor (ffmpeg -f null)"], _ = timed(lambda: subprocess.run(decode, check=True))
        url = f"{serve_directory(video.parent)[0]}/{video.name}"
        local = IngestConfig(allow_hosts=("127.0.0.1",))  # the bench's web server, through the egress proxy
        rows["ingest (yt-dlp over HTTP)"], _ = timed(fetch, common_pb2.Source(url=url), local, None, tmp)
        rows["audio (16 kHz mono WAV)"], _ = timed(extract_audio, video, tmp / "a.wav", AudioConfig())
        pcm, rate = read_pcm(tmp / "a.wav")
        configs = {
            "vad webrtc + speaker split": VadConfig(),
            "vad webrtc, no speaker split": VadConfig(speaker_change=False),
        }
        silero = ASSETS / "vad_weights" / "faster_whisper_silero_vad_v6.onnx"
        if silero.exists():
            configs["vad silero + speaker split"] = VadConfig(engine="silero", silero_model_path=str(silero))
        segments = {}
        for name, config in configs.items():
            rows[name], spans = timed(segment_speech, pcm, rate, config)
            segments[name] = len(spans)
        speech = to_segments("vbench", segment_speech(pcm, rate, VadConfig()))
        vision_frames = {}
        backend = backend_for(ModelsConfig())
        backend.infer("face_detector", {"images": (np.zeros((1, 240, 427, 3), np.uint8))})  # load the models
        backend.infer("facial_emotion", {"faces": np.zeros((1, 112, 112, 3), np.uint8)})
        media = probe(video)
        # The active-speaker check's cost is the first two rows' difference.
        for fps, speaker_fps in ((1.0, 0.0), (1.0, 10.0), (10.0, 10.0)):
            name = f"vision {fps:g} fps{', speaker check' if speaker_fps else ''}"
            config = VisionConfig(fps=fps, speaker_fps=speaker_fps)
            rows[name], results = timed(analyze_video, str(video), media, speech, config, backend)
            vision_frames[name] = sum(len(r.frames) for r in results)
    print(f"\nvideo: {video.name}, {duration:.1f} s\n")
    print(f"{'stage':34s} {'seconds':>8s} {'x realtime':>11s}")
    for name, seconds in rows.items():
        extra = f"  ({segments[name]} segments)" if name in segments else ""
        if name in vision_frames:
            extra = f"  ({vision_frames[name]} frames, {vision_frames[name] / seconds:.1f} frames/s)"
        print(f"{name:34s} {seconds:8.2f} {duration / seconds:10.0f}x{extra}")
    report = {
        "video": str(video),
        "duration_s": duration,
        "seconds": rows,
        "segments": segments,
        "vision_frames": vision_frames,
    }
    (OUT / "stages.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
