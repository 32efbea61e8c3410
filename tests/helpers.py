"""Helpers the test modules share: submitting and awaiting jobs on the stack, and word errors."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from emofactory.core.jobs import SETTLED
from emofactory.v1 import common_pb2, ingest_pb2


def submit(
    ingest,
    stack,
    *sources,
    labeler: common_pb2.LabelerOptions | None = None,
    asr: common_pb2.AsrOptions | None = None,
    **config,
) -> str:
    request = ingest_pb2.SubmitJobRequest(
        sources=list(sources),
        language="en-US",
        config=common_pb2.JobConfig(ingest=common_pb2.IngestOptions(allow_hosts=["127.0.0.1"], **config)),
    )
    if labeler is not None:
        request.config.labeler.CopyFrom(labeler)
    if asr is not None:
        request.config.asr.CopyFrom(asr)
    return ingest.SubmitJob(request, timeout=10).job_id


def wait_job(ingest, stack, job_id: str, timeout: float = 90) -> common_pb2.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job
        if job.state in SETTLED:
            return job
        time.sleep(0.3)
    pytest.fail(f"job {job_id} did not settle: {job}\n{stack.log_tail('ingest')}\n{stack.log_tail('vad')}")


def describe(job: common_pb2.Job) -> str:
    """Each video's stages, states and reasons: what a failed assertion on a job should show."""
    lines = [f"job {job.job_id} {common_pb2.JobState.Name(job.state)} errors={list(job.errors)}"]
    for v in job.videos:
        lines += [f"  {v.source}"] + [
            f"    {s.stage} {common_pb2.StageState.Name(s.state)} {s.reason}" for s in v.stages
        ]
    return "\n".join(lines)


def stage(video: common_pb2.VideoStatus, name: str) -> common_pb2.StageStatus:
    return next(s for s in video.stages if s.stage == name)


JFK = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def pcm16k(path) -> np.ndarray:
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, "<i2")


def word_errors(reference: str, hypothesis: str) -> int:
    ref, hyp = reference.split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]
