"""Catalog figures: seconds to cut 100 clips (MP4 + WAV + sync check) from the generated 10-minute
480p video, one FFmpeg process per clip (seed 000's way, the baseline's) and as the catalog cuts them
(a decode per group of nearby segments), and to create and export a 1,000-clip release (balance,
split, media, JSONL, CSV, WebDataset, Parquet, report) through a local S3 server and SQLite.
The cut is timed at each x264 preset the catalog offers for speed and at the smaller clip sizes and
frame rates a job may ask for (catalog.clip_max_height, clip_max_fps): seconds, bytes, clips in sync.
Usage: python -m bench.catalog  (the video is generated once, as bench.stages does)."""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from bench.baseline import ffmpeg_clip
from dev import sample
from emofactory.core.config import StoreConfig, load_section
from emofactory.core.emotions import CANONICAL
from emofactory.core.media import read_pcm
from emofactory.core.store import ObjectStore
from emofactory.local import LocalStack
from emofactory.stages.catalog import db
from emofactory.stages.catalog.clips import checked_clip, cut_clips
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.catalog.publish import create_release
from emofactory.stages.vad.config import VadConfig
from emofactory.stages.vad.segmentation import segment_speech, to_segments
from emofactory.v1 import catalog_pb2

VIDEO = Path(__file__).parent / "out" / "bench_10min_480p.mp4"


def main() -> None:
    if not VIDEO.exists():
        print("generating a 10-minute 480p video with speech, pauses and a face ...", flush=True)
        VIDEO.parent.mkdir(exist_ok=True)
        sample.sample_video(VIDEO, repeat=40, size="854x480")
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp) / "stack", services=()) as stack:
        tmp = Path(tmp)
        os.environ.update(stack.env())
        store = ObjectStore(load_section(StoreConfig, "store"))
        wav = tmp / "audio.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(VIDEO), "-ac", "1", "-ar", "16000", str(wav)], check=True)
        pcm, rate = read_pcm(wav)
        segments = to_segments("vbench", segment_speech(pcm, rate, VadConfig()))[:100]
        clips_dir = tmp / "clips"
        clips_dir.mkdir()
        config = load_section(CatalogConfig, "catalog")  # EMO_CATALOG__PRESET=veryfast, ...

        def one_process_per_clip(segment):
            mp4 = ffmpeg_clip(VIDEO, segment, clips_dir / f"{segment.segment_id}.mp4", config.preset, config.crf)
            return checked_clip(mp4, pcm, rate, segment, config.sync_tolerance_s)

        def per_clip():
            with ThreadPoolExecutor(os.cpu_count()) as pool:
                return list(pool.map(one_process_per_clip, segments))

        def catalog_cut(**encoding):
            chosen = replace(config, **encoding)
            return lambda: list(cut_clips(VIDEO, pcm, rate, segments, clips_dir, chosen))

        ways = {
            f"one FFmpeg process per clip, {config.preset}": per_clip,
            **{f"one decode per group, {p}": catalog_cut(preset=p) for p in ("veryfast", "superfast", "ultrafast")},
            "one decode per group, veryfast, 360 px": catalog_cut(preset="veryfast", clip_max_height=360),
            "one decode per group, veryfast, 15 fps": catalog_cut(preset="veryfast", clip_max_fps=15),
            "one decode per group, superfast, 360 px 15 fps": catalog_cut(
                preset="superfast", clip_max_height=360, clip_max_fps=15
            ),
        }
        cuts = {}
        for way, cut in ways.items():
            started = time.perf_counter()
            media = sorted(cut(), key=lambda m: m.segment_id)
            size = sum(m.mp4.stat().st_size for m in media)
            cuts[way] = (time.perf_counter() - started, sum(m.sync_ok for m in media), size)
        segments = sorted(segments, key=lambda s: s.segment_id)

        url = f"sqlite:///{tmp / 'catalog.db'}"
        keys = []
        for s, m in zip(segments, media):
            keys.append(
                (
                    store.put_file(f"vbench/catalog/{s.segment_id}.mp4", m.mp4, "video/mp4").key,
                    store.put_file(f"vbench/catalog/{s.segment_id}.wav", m.wav, "audio/wav").key,
                )
            )
        rng = random.Random(0)
        with db.sessions(url)() as session:
            for g in range(50):
                session.add(db.Video(video_id=f"vb{g:03d}", group_key=f"series:{g // 2}", info={}))
            for i in range(1000):
                mp4, wav_key = keys[i % len(keys)]
                label = rng.choice(CANONICAL[:6]) if i < 870 else "neutral"  # 130 = 15 % of 870
                session.add(
                    db.Clip(
                        clip_id=f"vb{i % 50:03d}-{i:08d}-{i + 1500:08d}", video_id=f"vb{i % 50:03d}",
                        start_s=i, end_s=i + 1.5, language="en-US", mp4_key=mp4, wav_key=wav_key,
                        label=label, confidence=rng.random(), kept=True, sync_ok=True, transcript=f"clip {i}",
                    )
                )  # fmt: skip
            session.commit()
        config = CatalogConfig(database_url=url)
        request = catalog_pb2.CreateReleaseRequest(name="bench", seed=0)
        started = time.perf_counter()
        release = create_release(store, config, request, tmp / "release")
        export_s = time.perf_counter() - started
    print(f"\n{len(media)} clips ({sum(s.end_s - s.start_s for s in segments):.0f} s of speech) cut from {VIDEO.name}:")
    print(f"{'how':48s} {'seconds':>8s} {'ms/clip':>8s} {'in sync':>8s} {'MiB':>6s}")
    for way, (cut_s, in_sync, size) in cuts.items():
        print(f"{way:48s} {cut_s:8.2f} {cut_s / len(media) * 1000:8.0f} {in_sync:8d} {size / 2**20:6.1f}")
    print(f"release of {len(release.records)} clips, all formats and the report: {export_s:.2f} s")


if __name__ == "__main__":
    main()
