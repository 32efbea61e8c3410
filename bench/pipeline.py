"""The whole pipeline against its floors, in one run:

- end to end through the local stack (seven services as processes, NATS, S3, SQLite), with and
  without ASR, on the generated 10-minute 480p video (or a given one), served over HTTP;
- the FFmpeg full-decode floor of the same file, and the ratio to it;
- a sequential baseline doing the same work the straightforward way (bench/baseline.py);
- busy seconds per stage inside the pipeline (the services' Prometheus counters), CPU seconds per
  process (the servers too), how busy the machine's cores were, and peak memory per service process;
- the video in chunks (vad.chunk_s, the default) against the whole video as one chunk;
- the clips at the fastest settings bench.catalog measured (ultrafast, 15 fps), against the default;
- scaling: a 4-video job with 1 and with 2 replicas of the heaviest worker.

Prints a table and writes bench/out/pipeline.json. Usage: python -m bench.pipeline [VIDEO]"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.baseline import run_baseline
from dev import sample
from dev.assets import ASSETS
from dev.webserver import serve_directory
from emofactory.core.channels import open_channel
from emofactory.core.jobs import SETTLED
from emofactory.core.media import probe
from emofactory.local import LocalStack
from emofactory.stages.asr.config import AsrConfig
from emofactory.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc

OUT = Path(__file__).parent / "out"
# The demo's labelling (face only: the generated speech carries no emotion), so every segment becomes a clip.
LABELER = common_pb2.LabelerOptions(modalities=["face"], min_modalities=1)


# The fastest clip settings bench.catalog measured (per job): what the clips' encoding costs end to end.
FAST_CLIPS = common_pb2.CatalogOptions(preset="ultrafast", clip_max_fps=15)


def run_job(
    stack: LocalStack,
    urls: list[str],
    asr: str,
    vad: common_pb2.VadOptions | None = None,
    catalog: common_pb2.CatalogOptions | None = None,
) -> tuple[float, common_pb2.Job]:
    asr_options = common_pb2.AsrOptions(engine=asr)
    config = common_pb2.JobConfig(vad=vad, asr=asr_options, labeler=LABELER, catalog=catalog)
    request = ingest_pb2.SubmitJobRequest(
        sources=[common_pb2.Source(url=u) for u in urls], language="en-US", config=config
    )
    with open_channel(stack.address("ingest")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        started = time.perf_counter()
        job_id = stub.SubmitJob(request, timeout=30).job_id
        while True:
            job = stub.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=30).job
            if job.state in SETTLED:
                return time.perf_counter() - started, job
            time.sleep(0.2)


def stage_seconds(stack: LocalStack) -> dict[str, float]:
    """Busy seconds per stage so far, from every service process's Prometheus endpoint."""
    total: dict[str, float] = {}
    for name in stack.procs:
        if f"{name}_metrics" not in stack.ports:
            continue
        with urllib.request.urlopen(stack.metrics_url(name), timeout=5) as response:
            text = response.read().decode()
        for stage, seconds in re.findall(r'emo_stage_seconds_sum\{stage="(\w+)"\} (\S+)', text):
            total[stage] = total.get(stage, 0.0) + float(seconds)
    return total


def cores_busy() -> tuple[int, int]:
    """The machine's (busy, total) CPU time so far, in ticks, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU seconds (user + system) each service process has used so far, with its FFmpeg children
    once they have exited: where the cores go, the servers (NATS, S3) included."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, proc in stack.procs.items():
        stat = Path(f"/proc/{proc.pid}/stat")
        if stat.exists():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            used[name] = sum(int(x) for x in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    return used


def peak_memory_mb(stack: LocalStack) -> dict[str, float]:
    """VmHWM of each service process (its own peak RSS; FFmpeg children are not counted)."""
    peaks = {}
    for name, proc in stack.procs.items():
        status = Path(f"/proc/{proc.pid}/status")
        if status.exists():
            match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
            peaks[name] = round(int(match.group(1)) / 1024, 1) if match else 0.0
    return peaks


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 2) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def bench_video() -> Path:
    """The video named on the command line, else the generated 10-minute 480p one (made once)."""
    OUT.mkdir(exist_ok=True)
    video = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else OUT / "bench_10min_480p.mp4"
    if not video.exists():
        print("generating a 10-minute 480p video with speech, pauses and a face ...", flush=True)
        sample.sample_video(video, repeat=40, size="854x480")
    return video


def stack_env() -> dict[str, str]:
    """Ingest may fetch from the bench's own web server on 127.0.0.1; the speech-emotion weights by
    path where the assets have them."""
    env = {"EMO_INGEST__ALLOW_HOSTS": "127.0.0.1"}
    ser = ASSETS / "ser_weights" / "marcogdepinto_Emotion_Voice_Detection_Model.h5"
    return env | ({"EMO_MODELS__SPEECH_EMOTION_PATH": str(ser)} if ser.is_file() else {})


def main() -> None:
    video = bench_video()
    duration = probe(video).duration_s
    report: dict = {"video": str(video), "duration_s": duration}
    decode = ["ffmpeg", "-loglevel", "error", "-i", str(video), "-f", "null", "-"]
    started = time.perf_counter()
    subprocess.run(decode, check=True)
    floor = report["decode_floor_s"] = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        media = tmp / "media"
        media.mkdir()
        names = {"with_asr": "a.mp4", "without_asr": "b.mp4", "one_chunk": "c.mp4", "fast_clips": "d.mp4"}
        for name in names.values():
            shutil.copyfile(video, media / name)
        quarter = min(150.0, duration / 4)
        for prefix in ("s", "t"):  # two sets of four quarter-length videos for the scaling runs
            for i in range(4):
                cmd = [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-ss",
                    f"{i * quarter}",
                    "-t",
                    f"{quarter}",
                    "-i",
                    str(video),
                    "-c",
                    "copy",
                ]
                subprocess.run([*cmd, str(media / f"{prefix}{i}.mp4")], check=True)
        url, server = serve_directory(media)
        with LocalStack(tmp / "stack", env=stack_env()) as stack:
            os.environ.update(stack.env())
            runs = {}
            whole = common_pb2.VadOptions(chunk_s=0)
            for name, engine, vad, catalog in (
                ("without_asr", "none", None, None),
                ("with_asr", AsrConfig().engine, None, None),  # the default ASR
                ("one_chunk", "none", whole, None),
                ("fast_clips", "none", None, FAST_CLIPS),
            ):
                before, busy_before, cpu_before = stage_seconds(stack), cores_busy(), cpu_seconds(stack)
                seconds, job = run_job(stack, [f"{url}/{names[name]}"], engine, vad, catalog)
                assert job.state == common_pb2.JOB_STATE_SUCCEEDED, job
                busy, total = (a - b for a, b in zip(cores_busy(), busy_before))
                runs[name] = {
                    "seconds": round(seconds, 2),
                    "stages": delta(stage_seconds(stack), before),
                    "cpu_s": delta(cpu_seconds(stack), cpu_before),
                    "cores_busy_pct": round(100 * busy / total, 1),
                }
            report["pipeline"] = runs
            busy = runs["without_asr"]["stages"]
            heaviest = max(busy, key=busy.get)
            report["peak_memory_mb"] = peak_memory_mb(stack)
            scaling = {}
            seconds, job = run_job(stack, [f"{url}/s{i}.mp4" for i in range(4)], "none")
            scaling["1 replica"] = round(seconds, 2)
            stack.add_replica(heaviest)
            seconds, job = run_job(stack, [f"{url}/t{i}.mp4" for i in range(4)], "none")
            scaling["2 replicas"] = round(seconds, 2)
            report["scaling"] = {"stage": heaviest, "videos": 4, "video_s": round(quarter, 1), **scaling}
        server.shutdown()
    report["baseline"] = run_baseline(video)

    runs = report["pipeline"]
    e2e = runs["without_asr"]["seconds"]
    rows = [  # (what, seconds, how busy the cores were)
        ("decode floor (ffmpeg -f null)", floor, None),
        *((what, runs[name]["seconds"], runs[name]["cores_busy_pct"]) for what, name in (
            ("pipeline end to end, ASR off", "without_asr"),
            ("pipeline end to end, default ASR", "with_asr"),
            ("the same, ASR off, one chunk", "one_chunk"),
            ("ASR off, clips ultrafast at 15 fps", "fast_clips"),
        )),
        ("sequential baseline (same work)", report["baseline"]["seconds"], None),
    ]  # fmt: skip
    print(f"\nvideo: {video.name}, {duration:.1f} s\n")
    print(f"{'run':36s} {'seconds':>8s} {'x realtime':>11s} {'/ floor':>8s} {'cores busy':>11s}")
    for name, seconds, busy in rows:
        pct = f"{busy:10.1f}%" if busy is not None else ""
        print(f"{name:36s} {seconds:8.2f} {duration / seconds:10.1f}x {seconds / floor:7.2f} {pct}")
    print(f"\nspeed-up over the sequential baseline: {report['baseline']['seconds'] / e2e:.2f}x")
    print("busy seconds per stage in the pipeline (ASR off):", report["pipeline"]["without_asr"]["stages"])
    print("busy seconds per stage in the pipeline (default ASR):", report["pipeline"]["with_asr"]["stages"])
    print("CPU seconds per process, FFmpeg children included (ASR off):", runs["without_asr"]["cpu_s"])
    s = report["scaling"]
    print(f"scaling, {s['videos']} videos of {s['video_s']} s, {s['stage']}: 1 replica {s['1 replica']} s,"
          f" 2 replicas {s['2 replicas']} s ({s['1 replica'] / s['2 replicas']:.2f}x)")  # fmt: skip
    print("peak memory per service (MB):", report["peak_memory_mb"])
    (OUT / "pipeline.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
