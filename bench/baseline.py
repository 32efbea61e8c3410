"""The sequential baseline: the same work as the pipeline (audio, VAD, faces and facial emotion at
1 fps, a label per segment, a cut clip per segment) done the straightforward way, as seed 000
describes it: one FFmpeg process per segment, frames from a full-rate decode of the segment, the
models called one frame at a time, segments spread over a thread pool."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from emofactory.core.config import ModelsConfig
from emofactory.core.emotions import emotion_name
from emofactory.core.media import probe, read_pcm
from emofactory.models.backends import backend_for
from emofactory.stages.catalog.clips import checked_clip
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.vad.config import VadConfig
from emofactory.stages.vad.segmentation import segment_speech, to_segments
from emofactory.stages.vision.analysis import Face, FrameFaces, SegmentFaces, jpeg
from emofactory.stages.vision.config import VisionConfig
from emofactory.stages.vision.faces import active_face, downscale, square_crop
from emofactory.stages.vision.frames import segment_samples
from emofactory.stages.vision.stage import summarize


def _segment_frames(video: Path, segment, width: int, height: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of the segment (a full-rate decode), and each frame's time in the source."""
    cmd = ["ffmpeg", "-v", "error", "-ss", f"{segment.start_s:.3f}", "-to", f"{segment.end_s:.3f}", "-i", str(video)]
    raw = subprocess.run([*cmd, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return frames, segment.start_s + np.arange(len(frames)) / fps


def ffmpeg_clip(video: Path, segment, out: Path, preset: str, crf: int) -> Path:
    """One clip by one FFmpeg process: input seeking, x264 and AAC (seed 000's way)."""
    span = ["-ss", f"{segment.start_s:.3f}", "-t", f"{segment.end_s - segment.start_s:.3f}", "-i", str(video)]
    codecs = ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-c:a", "aac"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *span, *codecs, "-movflags", "+faststart", str(out)], check=True)
    return out


def run_baseline(video: Path, workers: int = 2) -> dict:
    config = VisionConfig()
    backend = backend_for(ModelsConfig())
    started = time.perf_counter()
    media = probe(video)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = tmp / "audio.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-ac", "1", "-ar", "16000", str(wav)], check=True)
        pcm, rate = read_pcm(wav)
        segments = to_segments("vbaseline", segment_speech(pcm, rate, VadConfig()))
        catalog = CatalogConfig()  # the same clip settings as the catalog's

        def one(index: int) -> str:
            segment = segments[index]
            frames, times = _segment_frames(video, segment, media.width, media.height, media.fps)
            samples = segment_samples(index, segment.start_s, segment.end_s, config.fps)
            result = SegmentFaces(segment, sum(s.grid for s in samples))
            for sample in samples:
                if not len(frames):
                    break
                frame = frames[int(np.argmin(np.abs(times - sample.time_s)))]
                if sample.midpoint:
                    result.midpoint_jpeg = jpeg(frame)
                if not sample.grid:
                    continue
                small = downscale(frame, config.scale)
                found = backend.infer("face_detector", {"images": small[None]})
                scale = np.array([frame.shape[1] / small.shape[1], frame.shape[0] / small.shape[0]] * 2, np.float32)
                box = active_face(found["boxes"][0] * scale, found["scores"][0], config.face_confidence, False)
                faces = FrameFaces(sample.time_s, int((found["scores"][0] >= config.face_confidence).sum()))
                if box is not None:
                    crop = square_crop(frame, box, config.face_margin, config.crop_size)
                    probs = backend.infer("facial_emotion", {"faces": crop[None]})["probabilities"][0]
                    faces.found, faces.active = [Face(box, None, crop, probs)], 0
                result.frames.append(faces)
            vote = summarize(result, config).vote
            out = tmp / f"clip{index}"
            out.mkdir()
            mp4 = ffmpeg_clip(video, segment, out / "clip.mp4", catalog.preset, catalog.crf)
            checked_clip(mp4, pcm, rate, segment, catalog.sync_tolerance_s)
            return emotion_name(vote) or "none"

        with ThreadPoolExecutor(workers) as pool:
            votes = list(pool.map(one, range(len(segments))))
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "segments": len(segments), "votes": dict(Counter(votes)), "workers": workers}


if __name__ == "__main__":
    import sys

    print(run_baseline(Path(sys.argv[1])))
