"""Where the CPU goes in one pipeline run (ASR off) on the bench video. On two cores the CPU is what
bounds the pipeline, so each service is measured in CPU seconds: its own (from /proc, and split by
py-spy's samples of its running threads into the innermost functions of ours, services/ and
deploy/) and its children's (FFmpeg, ffprobe: the kernel's count of reaped children). Writes the
raw collapsed stacks to bench/out/profile/<service>.txt (flame-graph input) and the summary to
bench/out/profile.json. Usage: python -m bench.profile [VIDEO]"""

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

from bench.pipeline import OUT, bench_video, run_job, stack_env
from dev.webserver import serve_directory
from emofactory.local import LocalStack
from emofactory.pipeline import NAMES
from emofactory.v1 import common_pb2

RATE = 50  # samples per second per process
OURS = ("emofactory/", "deploy/")  # py-spy names files from their sys.path entry
TICKS = os.sysconf("SC_CLK_TCK")
# The services that run a stage (the servers and replicas are not sampled).


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its reaped children's), user + system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS


def our_frame(stack: str) -> str:
    """The innermost frame of our code in a collapsed stack ("a (file:line);b (file:line)"), without
    its line; "other" when none is ours (the event loop, library threads)."""
    for frame in reversed(stack.split(";")):
        name, _, where = frame.rpartition(" (")
        if where.startswith(OURS):
            return f"{name} ({where.split(':')[0]})"
    return "other"


def summarize(raw: Path, own_s: float, top: int = 5) -> list[tuple[str, float, float]]:
    """The process's own CPU seconds split in proportion to py-spy's samples of running threads per
    innermost function of ours: (function, seconds, share %), largest first."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            counts[our_frame(stack)] += int(samples)
    total = sum(counts.values())
    return [(name, round(own_s * n / total, 2), round(100 * n / total, 1)) for name, n in counts.most_common(top)]


def main() -> None:
    video = bench_video()
    folder = OUT / "profile"
    folder.mkdir(exist_ok=True)
    url, server = serve_directory(video.parent)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp) / "stack", env=stack_env()) as stack:
        os.environ.update(stack.env())
        pids = {name: stack.procs[name].pid for name in NAMES if name in stack.procs}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        recorders = {
            name: subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(RATE),
                    "--format",
                    "raw",
                    "--output",
                    str(folder / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for name, pid in pids.items()
        }
        try:
            seconds, job = run_job(stack, [f"{url}/{video.name}"], "none")
        finally:
            for recorder in recorders.values():
                recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            for recorder in recorders.values():
                recorder.wait(timeout=60)
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    server.shutdown()
    assert job.state == common_pb2.JOB_STATE_SUCCEEDED, job
    report = {"video": str(video), "job_s": round(seconds, 2), "services": {}}
    print(f"\nvideo: {video.name}; job (ASR off) {seconds:.1f} s wall; CPU seconds per service\n")
    print(f"{'service':8s} {'own':>7s} {'children':>9s}   where its own CPU went (py-spy)")
    for name in pids:
        own, children = (round(a - b, 2) for a, b in zip(after[name], before[name]))
        top = summarize(folder / f"{name}.txt", own)
        report["services"][name] = {"own_cpu_s": own, "children_cpu_s": children, "top": top}
        print(f"{name:8s} {own:7.1f} {children:9.1f}   " + "; ".join(f"{f} {s:.1f} s" for f, s, _ in top[:3]))
    total = sum(s["own_cpu_s"] + s["children_cpu_s"] for s in report["services"].values())
    report["cpu_s"] = round(total, 2)
    print(f"\nall services: {total:.1f} CPU s in {seconds:.1f} s wall on {os.cpu_count()} cores")
    (OUT / "profile.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
