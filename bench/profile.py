"""Where each service's time goes in one pipeline run (ASR off) on the bench video: py-spy samples
every service process for the whole job, idle threads included, so a thread waiting on FFmpeg
shows where it waits. Prints, per service, its wall samples split by the innermost function of
ours (services/, deploy/) on the stack, and writes the raw collapsed stacks to
bench/out/profile/<service>.txt (flame-graph input) and the summary to bench/out/profile.json.
Usage: python -m bench.profile [VIDEO]"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.pipeline import ASSETS, OUT, run_job
from deploy import sample
from deploy.stack import LocalStack
from deploy.webserver import serve_directory
from services.common.gen.emofactory.v1 import common_pb2

RATE = 50  # samples per second per process
OURS = ("services/", "deploy/")
# Where a service waits for work: stacks whose innermost frame of ours is here are idle.
WAITING = ("__main__.py", "services/common/service.py", "services/common/bus.py")
# The services that run a stage (the servers and replicas are not sampled).
SERVICES = ("ingest", "audio", "vad", "vision", "asr", "labeler", "catalog")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def our_frame(stack: str) -> str:
    """The innermost frame of our code in a collapsed stack ("a (file:line);b (file:line)"), without
    its line; "idle" when there is none (library threads) or it is where a service waits for work."""
    for frame in reversed(stack.split(";")):
        name, _, where = frame.rpartition(" (")
        if any(part in where for part in OURS):
            path = where.split(":")[0]
            return "idle" if path.endswith(WAITING) else f"{name} ({path})"
    return "idle"


def summarize(raw: Path, top: int = 6) -> dict:
    """Seconds per innermost function of ours, largest first, idle left out. Threads add up: two
    threads busy for a second count two."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            counts[our_frame(stack)] += int(samples)
    ours = {k: v for k, v in counts.items() if k != "idle"}
    busy = sum(ours.values())
    return {
        "samples": busy,
        "seconds": round(busy / RATE, 2),
        "top": [(name, round(n / RATE, 2), round(100 * n / busy, 1)) for name, n in Counter(ours).most_common(top)]
        if busy
        else [],
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    video = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else OUT / "bench_10min_480p.mp4"
    if not video.exists():
        print("generating a 10-minute 480p video with speech, pauses and a face ...", flush=True)
        sample.sample_video(video, repeat=40, size="854x480")
    folder = OUT / "profile"
    folder.mkdir(exist_ok=True)
    env = {}
    ser = ASSETS / "ser_weights" / "marcogdepinto_Emotion_Voice_Detection_Model.h5"
    if ser.is_file():
        env["EMO_MODELS__SPEECH_EMOTION_PATH"] = str(ser)
    url, server = serve_directory(video.parent)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp) / "stack", env=env) as stack:
        os.environ.update(stack.env())
        recorders = {
            name: subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(stack.procs[name].pid),
                    "--rate",
                    str(RATE),
                    "--idle",
                    "--format",
                    "raw",
                    "--output",
                    str(folder / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for name in SERVICES
            if name in stack.procs
        }
        try:
            seconds, job = run_job(stack, [f"{url}/{video.name}"], "none")
        finally:
            for recorder in recorders.values():
                recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            for recorder in recorders.values():
                recorder.wait(timeout=60)
    server.shutdown()
    assert job.state == common_pb2.JOB_STATE_SUCCEEDED, job
    report = {"video": str(video), "job_s": round(seconds, 2), "services": {}}
    print(f"\nvideo: {video.name}; job (ASR off) {seconds:.1f} s; wall seconds in our code per service\n")
    for name in recorders:
        summary = report["services"][name] = summarize(folder / f"{name}.txt")
        print(f"{name:8s} {summary['seconds']:7.1f} s")
        for function, spent, share in summary["top"]:
            print(f"{'':8s} {spent:7.1f} s {share:5.1f} %  {function}")
    (OUT / "profile.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
