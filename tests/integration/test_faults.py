"""Faults end to end, all seven services as processes over real NATS, S3 and the database: a worker
killed mid-job loses and duplicates nothing; a poison event is dead-lettered after max deliveries
and shows on the job. (A corrupt video and a non-video in one job: test_pipeline.)"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import time
import wave

import grpc
import pytest
from nats.js.api import ConsumerConfig

from emofactory.core.bus import StageWorker, publish
from emofactory.core.channels import open_channel
from emofactory.core.config import BusConfig
from emofactory.core.errors import PermanentError
from emofactory.core.events import AUDIO_EXTRACTED, dead_letter_subject
from emofactory.local import ROOT, SERVING, LocalStack, grpc_health
from emofactory.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, events_pb2, ingest_pb2, vad_pb2, vad_pb2_grpc
from tests.helpers import describe, submit, wait_job

S = common_pb2.StageState


def stage_state(job: common_pb2.Job, name: str) -> int:
    return next((s.state for v in job.videos for s in v.stages if s.stage == name), 0)


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(stack, ingest, store, http_server, long_sample):
    video_path, truth = long_sample
    request = ingest_pb2.SubmitJobRequest(
        sources=[common_pb2.Source(path=str(video_path))],
        language="en-US",
        config=common_pb2.JobConfig(
            vad=common_pb2.VadOptions(chunk_s=10),  # several chunks, some past vision when it dies
            vision=common_pb2.VisionOptions(fps=10),
            labeler=common_pb2.LabelerOptions(modalities=["face"], min_modalities=1),
        ),
    )
    job_id = ingest.SubmitJob(request, timeout=10).job_id
    deadline = time.monotonic() + 60
    while (
        stage_state(ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job, "vad") != S.STAGE_STATE_DONE
    ):
        assert time.monotonic() < deadline, "vad did not finish"
        time.sleep(0.1)
    time.sleep(1.0)  # vision has the segments and is decoding frames
    job = ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job
    assert stage_state(job, "vision") == 0, "vision finished before it could be killed"
    stack.kill("vision", signal.SIGKILL)
    stack.restart("vision")
    job = wait_job(ingest, stack, job_id, timeout=180)
    assert job.state == common_pb2.JOB_STATE_SUCCEEDED, describe(job)
    video = job.videos[0]
    chunks = {s.stage: (s.chunks, s.chunks_done) for s in video.stages if s.chunks}
    assert len(chunks) == 4 and len(set(chunks.values())) == 1 and next(iter(chunks.values()))[0] >= 3, chunks
    with open_channel(stack.address("catalog")) as ch:
        clips = (
            catalog_pb2_grpc.CatalogServiceStub(ch)
            .ListClips(catalog_pb2.ListClipsRequest(job_id=job_id, page_size=100), timeout=10)
            .clips
        )
    ids = [c.clip_id for c in clips]
    assert len(ids) == len(set(ids)) == len(truth)  # every segment once, none twice
    assert all(c.face_ratio == 1 and c.sync_ok for c in clips)
    frames = [k for k in store.list_keys(f"{video.video_id}/vision/") if k.endswith("-frame.jpg")]
    assert len(frames) == len(truth)


def odd_rate_wav() -> bytes:
    """A PCM WAV at 11,025 Hz: WebRTC VAD fails on it with an error of its own (webrtcvad.Error)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(11025)
        w.writeframes(bytes(44100))
    return out.getvalue()


@pytest.mark.hostile
def test_poison_event_is_dead_lettered_after_max_deliveries_and_shown_on_the_job(
    stack,
    ingest,
    store,
    http_server,
    speech_sample,
):
    job_id = submit(ingest, stack, common_pb2.Source(url=f"{http_server}/{speech_sample[0].name}"))
    job = wait_job(ingest, stack, job_id)
    video_id = job.videos[0].video_id
    # An event the vad worker cannot handle, but not for a reason it can tell is permanent:
    # it is retried up to max_deliver (5) times, then dead-lettered.
    audio = store.put_bytes(f"{video_id}/audio/poison.wav", odd_rate_wav(), "audio/wav")
    poison = events_pb2.AudioExtracted(
        envelope=events_pb2.Envelope(context=common_pb2.JobContext(job_id=job_id), video_id=video_id, audio=audio)
    )

    async def publish_and_wait():
        nc = await stack.bus()
        js = nc.jetstream()
        sub = await js.subscribe(dead_letter_subject("vad"), ordered_consumer=True)
        await js.publish(AUDIO_EXTRACTED, poison.SerializeToString(), headers={"Nats-Msg-Id": f"poison-{job_id}"})
        try:
            while True:
                letter = events_pb2.DeadLetter.FromString((await sub.next_msg(timeout=60)).data)
                if letter.job_id == job_id:
                    return letter
        finally:
            await nc.close()

    letter = asyncio.run(publish_and_wait())
    assert letter.deliveries == 5 and letter.reason.startswith("gave up after 5 deliveries")
    job = ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job
    (vad,) = [s for s in job.videos[0].stages if s.stage == "vad"]
    assert vad.state == S.STAGE_STATE_FAILED and "gave up after 5 deliveries" in vad.reason and vad.attempts == 5
    assert job.state == common_pb2.JOB_STATE_FAILED
    (summary,) = [row for row in job.summary if row.stage == "vad"]
    assert summary.failed == 1 and json.loads(json.dumps(letter.stage)) == "vad"


@pytest.mark.hostile
def test_an_event_larger_than_the_bus_takes_is_a_permanent_failure(stack):
    """Retrying cannot shrink it: it is dead-lettered at once instead of redelivered max_deliver times."""

    async def publish_too_much():
        nc = await stack.bus()
        try:
            big = events_pb2.AudioExtracted(envelope=events_pb2.Envelope(video_id="v" * (nc.max_payload + 1)))
            with pytest.raises(PermanentError, match="more than the bus takes"):
                await publish(nc.jetstream(), AUDIO_EXTRACTED, big, "too-big")
        finally:
            await nc.close()

    asyncio.run(publish_too_much())


def test_a_stopped_worker_hands_its_message_back_within_the_grace_period(stack, ingest, long_sample):
    """SIGTERM while vision decodes for longer than its grace period: the process is gone within it
    (plus its own start-up of shutting down), the message is handed back at once, and a new worker
    finishes the job with every clip once."""
    video_path, truth = long_sample
    stack.extra_env["EMO_SERVER__GRACE_S"] = "1"
    try:
        stack.kill("vision", signal.SIGKILL)
        stack.restart("vision")
    finally:
        del stack.extra_env["EMO_SERVER__GRACE_S"]
    request = ingest_pb2.SubmitJobRequest(
        sources=[common_pb2.Source(path=str(video_path))],
        language="en-US",
        config=common_pb2.JobConfig(
            vision=common_pb2.VisionOptions(fps=10, face_confidence=0.91),  # another config: vision works anew
            labeler=common_pb2.LabelerOptions(modalities=["face"], min_modalities=1),
        ),
    )
    job_id = ingest.SubmitJob(request, timeout=10).job_id
    deadline = time.monotonic() + 60
    while stage_state(ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job, "vad") == 0:
        assert time.monotonic() < deadline, "vad did not finish"
        time.sleep(0.1)
    time.sleep(1.0)  # vision has the segments and is decoding frames
    assert stage_state(ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job, "vision") == 0
    started = time.monotonic()
    stack.kill("vision", signal.SIGTERM)
    assert time.monotonic() - started < 8, stack.log_tail("vision")
    assert "handed back" in stack.log_tail("vision", 50)
    stack.restart("vision")
    job = wait_job(ingest, stack, job_id, timeout=180)
    assert job.state == common_pb2.JOB_STATE_SUCCEEDED, describe(job)
    with open_channel(stack.address("catalog")) as ch:
        clips = catalog_pb2_grpc.CatalogServiceStub(ch).ListClips(
            catalog_pb2.ListClipsRequest(job_id=job_id, page_size=100), timeout=10
        )
    assert len(clips.clips) == len({c.clip_id for c in clips.clips}) == len(truth)


def test_a_service_started_before_its_topology_waits_not_serving_then_serves(tmp_path):
    """Started on a bus with no stream, bucket or consumer yet (a fresh cluster whose provisioning has
    not run), a service stays up and says NOT_SERVING, its RPC UNAVAILABLE; once the topology is
    applied it turns SERVING by itself."""
    with LocalStack(tmp_path / "early", services=("vad",), provisioned=False) as early:
        address, client = early.address("vad"), early.client_config()
        time.sleep(2)
        assert early.procs["vad"].poll() is None and grpc_health(address, client) != SERVING
        with open_channel(address, client) as channel:
            with pytest.raises(grpc.RpcError) as err:
                vad_pb2_grpc.VadServiceStub(channel).DetectSegments(vad_pb2.DetectSegmentsRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "waiting for NATS" in err.value.details()
        early.provision()
        early.wait_service("vad")  # SERVING, within its retry pause (at most 15 s)
        assert "waiting for NATS, the bucket and the topology" in early.log_tail("vad", 100)


def test_a_service_given_the_topology_applies_it_itself(tmp_path):
    """What the chart does instead of a hook: every service applies the release's topology at start."""
    topology = {"EMO_BUS__TOPOLOGY": str(ROOT / "deploy" / "jetstream.yaml")}
    with LocalStack(tmp_path / "self", services=("vad",), provisioned=False, env=topology) as fresh:
        fresh.wait_service("vad")  # SERVING: stream, bucket and consumer made by the service

        async def consumer():
            nc = await fresh.bus()
            try:
                return (await nc.jetstream().consumer_info("EMO", "vad")).config.filter_subjects
            finally:
                await nc.close()

        assert asyncio.run(consumer()) == [AUDIO_EXTRACTED]


def test_messages_waiting_in_a_fetched_batch_are_not_redelivered(stack):
    """Three messages fetched together by one replica, 1.5 s of work each, a 2 s ack wait: the third
    waits 3 s, and its heartbeat from the fetch on keeps it from going to the other replica meanwhile."""
    seen: list[str] = []

    async def handle(subject, event):
        seen.append(event.envelope.video_id)
        await asyncio.sleep(1.5)

    async def main():
        nc = await stack.bus()
        js = nc.jetstream()
        await js.add_stream(name="BATCHTEST", subjects=["batchtest.>"])
        try:
            await js.add_consumer("BATCHTEST", ConsumerConfig(durable_name="slow", ack_wait=2, max_deliver=5))
            for i in range(3):
                event = events_pb2.AudioExtracted(envelope=events_pb2.Envelope(video_id=f"v{i}"))
                await js.publish("batchtest.x", event.SerializeToString())
            config = BusConfig(stream="BATCHTEST", fetch_batch=3, fetch_timeout_s=0.5, heartbeat_s=0.5)
            payloads = {"batchtest.x": events_pb2.AudioExtracted}
            stop = asyncio.Event()
            first = asyncio.create_task(StageWorker("slow", nc, None, handle, config, payloads).run(stop))
            await asyncio.sleep(0.5)  # the first replica holds all three; a second one pulls beside it
            second = asyncio.create_task(StageWorker("slow", nc, None, handle, config, payloads).run(stop))
            await asyncio.sleep(4.5 + 3)  # the three, then time for any redelivery to show
            stop.set()
            await asyncio.gather(first, second)
        finally:
            await js.delete_stream("BATCHTEST")
            await nc.close()

    asyncio.run(main())
    assert seen == ["v0", "v1", "v2"]
