"""The README's first command: starts the local stack, generates the bundled sample (espeak-ng
speech with pauses under a test-pattern video), submits it over gRPC, waits for ingest -> audio
-> vad, and prints the job and its speech segments."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import grpc

from deploy import sample
from deploy.stack import ROOT, LocalStack
from services.common.config import StoreConfig, load_section
from services.common.gen.emofactory.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc
from services.common.store import ObjectStore

SETTLED = (common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_PARTIAL, common_pb2.JOB_STATE_FAILED)


def main() -> int:
    work = Path(os.environ.get("EMO_DATA_DIR", ROOT / ".emofactory" / "demo"))
    media = work / "media"
    media.mkdir(parents=True, exist_ok=True)
    video = media / "sample.mp4"
    truth = sample.sample_video(video)
    print(f"sample: {video} ({len(truth)} phrases, {truth[-1].end_s:.1f} s of speech timeline)")

    started = time.monotonic()
    with LocalStack(work / "stack", env={"EMO_INGEST__LOCAL_ROOTS": str(media)}) as stack:
        os.environ.update(stack.env())
        print(f"stack up in {time.monotonic() - started:.1f} s: NATS {stack.nats_url}, S3 {stack.s3_endpoint}")
        with grpc.insecure_channel(stack.address("ingest")) as channel:
            ingest = ingest_pb2_grpc.IngestServiceStub(channel)
            submitted = time.monotonic()
            job_id = ingest.SubmitJob(
                ingest_pb2.SubmitJobRequest(sources=[common_pb2.Source(path=str(video))], language="en-US"), timeout=10
            ).job_id
            while True:
                job = ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job
                if job.state in SETTLED:
                    break
                time.sleep(0.2)
        print(f"job {job_id}: {common_pb2.JobState.Name(job.state)} in {time.monotonic() - submitted:.1f} s")
        store = ObjectStore(load_section(StoreConfig, "store"))
        for v in job.videos:
            print(f"video {v.video_id} ({v.source})")
            for s in v.stages:
                print(f"  {s.stage:7s} {common_pb2.StageState.Name(s.state):18s} items={s.items} {s.reason}")
            for key in store.list_keys(f"{v.video_id}/vad/"):
                doc = json.loads(store.get_bytes(common_pb2.ObjectRef(key=key)))
                print(f"  segments ({key}):")
                for seg in doc["segments"]:
                    span = f"{seg['start_s']:7.2f} - {seg['end_s']:7.2f} s"
                    print(f"    {span}  {seg['start_reason']:28s} {seg['segment_id']}")
    return 0 if job.state == common_pb2.JOB_STATE_SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
