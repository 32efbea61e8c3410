"""The README's first command: starts the local stack, generates the bundled sample (espeak-ng
speech with pauses under a test-pattern video with a real face), submits it over gRPC, waits for
ingest -> audio -> vad -> vision + asr -> labeler, and prints the job and, per speech segment, its
face presence, facial-emotion vote, transcript and fused label."""

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

    env = {"EMO_INGEST__LOCAL_ROOTS": str(media)}
    assets = Path(os.environ.get("EMOFACTORY_ASSETS", ROOT.parent / "shared" / "assets"))
    ser = assets / "ser_weights" / "marcogdepinto_Emotion_Voice_Detection_Model.h5"
    if "EMO_MODELS__SPEECH_EMOTION_PATH" not in os.environ and ser.is_file():
        env["EMO_MODELS__SPEECH_EMOTION_PATH"] = str(ser)  # GPL-3.0 weights: used by path, never bundled
    print(f"speech-emotion model: {env.get('EMO_MODELS__SPEECH_EMOTION_PATH') or 'none (audio modality missing)'}")
    started = time.monotonic()
    with LocalStack(work / "stack", env=env) as stack:
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
            docs = {}
            for key in store.list_keys(f"{v.video_id}/"):
                if key.endswith((".json",)) and "/ingest/" not in key:
                    docs[key.split("/")[1]] = (key, json.loads(store.get_bytes(common_pb2.ObjectRef(key=key))))
            faces = {s["segment_id"]: s for s in docs.get("vision", ("", {"segments": []}))[1]["segments"]}
            texts = {t["segment_id"]: t for t in docs.get("asr", ("", {"transcripts": []}))[1]["transcripts"]}
            labels = {x["segment_id"]: x for x in docs.get("labeler", ("", {"labels": []}))[1]["labels"]}
            print("  segments:  " + ", ".join(f"{stage}: {key}" for stage, (key, _) in sorted(docs.items())))
            for seg in docs.get("vad", ("", {"segments": []}))[1]["segments"]:
                face = faces.get(seg["segment_id"], {})
                text = texts.get(seg["segment_id"], {})
                said = text.get("text") or f"[{text.get('failure_reason', 'no transcript')}]"
                label = labels.get(seg["segment_id"], {}).get("label", {})
                verdict = "kept" if label.get("kept") else "rejected"
                print(
                    f"    {seg['start_s']:6.2f}-{seg['end_s']:6.2f} s  face {face.get('face_ratio', 0):4.0%}"
                    f" {face.get('vote', '-')[8:]:10s} {said!r}\n"
                    f"      label {label.get('emotion', '-')[8:]} {label.get('confidence', 0):.2g} {verdict}:"
                    f" {'; '.join(label.get('reasons', []))}"
                )
    return 0 if job.state == common_pb2.JOB_STATE_SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
