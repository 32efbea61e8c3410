"""The pipeline in one process (`run_local`): the same stages as the services, on a folder store,
with the job accounting GetJob reports."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from emofactory.core.errors import PermanentError
from emofactory.core.events import SEGMENTS_LABELED, SPEECH_SEGMENTED
from emofactory.pipeline import NAMES, STAGES
from emofactory.run_local import run_local
from emofactory.stages.catalog import db
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.vision.stage import VisionStage
from emofactory.v1 import common_pb2

S_DONE = common_pb2.STAGE_STATE_DONE
FACE_ONLY = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(modalities=["face"], min_modalities=1))


@pytest.fixture(scope="module")
def local_job(tmp_path_factory, media_dir, speech_sample):
    root = tmp_path_factory.mktemp("local")
    defaults = {
        "ingest": IngestConfig(local_roots=(str(media_dir),)),
        "catalog": replace(CatalogConfig(), database_url=f"sqlite:///{root / 'catalog.db'}"),
    }
    source = common_pb2.Source(path=str(speech_sample[0]))

    def run(job_id: str, config: common_pb2.JobConfig = FACE_ONLY):
        return asyncio.run(run_local([source], root, config=config, defaults=defaults, job_id=job_id))

    return run, root, defaults


def test_a_local_file_runs_through_every_stage_in_one_process(local_job, speech_sample):
    run, root, defaults = local_job
    result = run("local1")
    assert result.job.state == common_pb2.JOB_STATE_SUCCEEDED, result.job
    (video,) = result.job.videos
    assert [s.stage for s in video.stages] == list(NAMES) and video.source == str(speech_sample[0])
    assert [row.done for row in result.job.summary] == [1] * len(NAMES)
    (segmented,) = result.of(SPEECH_SEGMENTED)
    assert len(segmented.segments) == len(speech_sample[1])
    (labeled,) = result.of(SEGMENTS_LABELED)
    assert all(x.label.kept and x.label.emotion == common_pb2.EMOTION_HAPPINESS for x in labeled.labels)
    with db.sessions(defaults["catalog"].database_url)() as session:
        clips = session.query(db.Clip).filter(db.Clip.job_id == "local1", db.Clip.kept.is_(True)).all()
        assert len(clips) == len(speech_sample[1]) and all(c.sync_ok and c.mp4_key for c in clips)
        assert session.get(db.Video, video.video_id).source == str(speech_sample[0])
    info = json.loads(result.store.get_bytes(result.store.ref(f"{video.video_id}/ingest/info.json")))
    assert info["source"] == str(speech_sample[0]) and info["ingested_at"]


def test_the_same_file_again_writes_the_same_objects(local_job):
    run, root, _ = local_job
    first = run("local2")
    keys = first.store.list_keys("")
    again = run("local2")
    assert again.job.state == common_pb2.JOB_STATE_SUCCEEDED and again.store.list_keys("") == keys


@pytest.mark.hostile
def test_a_second_job_over_the_same_file_leaves_the_first_ones_clips_alone(local_job, speech_sample):
    run, _, defaults = local_job
    run("keeps")
    # one modality, two required: nothing kept, which must not un-keep the first job's clips
    strict = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(modalities=["face"], min_modalities=2))
    assert run("keepsnone", strict).job.state == common_pb2.JOB_STATE_SUCCEEDED
    with db.sessions(defaults["catalog"].database_url)() as session:
        first, second = (session.query(db.Clip).filter(db.Clip.job_id == job).all() for job in ("keeps", "keepsnone"))
        assert len(first) == len(second) == len(speech_sample[1])
        assert all(c.kept and c.mp4_key for c in first) and not any(c.kept for c in second)
        assert {c.segment_id for c in first} == {c.segment_id for c in second}
        assert not {c.clip_id for c in first} & {c.clip_id for c in second}


def test_a_failing_stage_is_recorded_on_the_video_and_later_stages_do_not_run(tmp_path, media_dir, not_a_video):
    source = common_pb2.Source(path=str(not_a_video))
    defaults = {"ingest": IngestConfig(local_roots=(str(media_dir),))}
    result = asyncio.run(run_local([source], tmp_path, stages=STAGES[:3], defaults=defaults))
    (video,) = result.job.videos
    assert result.job.state == common_pb2.JOB_STATE_FAILED
    failed = [s for s in video.stages if s.state == common_pb2.STAGE_STATE_FAILED]
    assert [s.stage for s in failed] == ["ingest"] and failed[0].reason


def test_a_long_video_flows_in_chunks_to_the_same_clips_and_labels(tmp_path, media_dir, long_sample):
    """vad.chunk_s 10 on a 45 s video: each later stage runs once per chunk and records each; the job's
    clips, labels and rows are those of the video as one chunk, and a second run writes the same objects."""
    defaults = {
        "ingest": IngestConfig(local_roots=(str(media_dir),)),
        "catalog": replace(CatalogConfig(), database_url=f"sqlite:///{tmp_path / 'catalog.db'}"),
    }
    source = common_pb2.Source(path=str(long_sample[0]))

    def run(job_id: str, chunk_s: float):
        config = common_pb2.JobConfig(vad=common_pb2.VadOptions(chunk_s=chunk_s), labeler=FACE_ONLY.labeler)
        return asyncio.run(run_local([source], tmp_path, config=config, defaults=defaults, job_id=job_id))

    chunked, whole = run("chunked", 10.0), run("whole", 0.0)
    assert chunked.job.state == whole.job.state == common_pb2.JOB_STATE_SUCCEEDED, chunked.job
    parts = chunked.of(SPEECH_SEGMENTED)
    assert len(parts) >= 3 and [p.envelope.chunk for p in parts] == list(range(len(parts)))
    assert {p.envelope.chunks for p in parts} == {len(parts)}
    (one,) = whole.of(SPEECH_SEGMENTED)
    assert [s for p in parts for s in p.segments] == list(one.segments)
    (video,) = chunked.job.videos
    for status in video.stages[3:]:  # vision, asr, labeler, catalog: each chunk, done
        assert (status.state, status.chunks, status.chunks_done) == (S_DONE, len(parts), len(parts))
    assert [row.done for row in chunked.job.summary] == [1] * len(NAMES)

    def labels(result):
        return {x.segment_id: (x.label.emotion, x.label.kept) for e in result.of(SEGMENTS_LABELED) for x in e.labels}

    assert labels(chunked) == labels(whole) and len(labels(whole)) == len(long_sample[1])
    with db.sessions(defaults["catalog"].database_url)() as session:
        rows = {job: session.query(db.Clip).filter(db.Clip.job_id == job).all() for job in ("chunked", "whole")}
        assert sorted((c.segment_id, c.mp4_key) for c in rows["chunked"]) == sorted(
            (c.segment_id, c.mp4_key) for c in rows["whole"]
        )
    keys = chunked.store.list_keys("")
    assert run("chunked", 10.0).store.list_keys("") == keys


@pytest.mark.hostile
def test_a_chunk_that_fails_stops_only_itself_and_the_video_settles_failed(tmp_path, media_dir, long_sample):
    """vision fails on the second chunk: that chunk is recorded failed with its reason, the others go on
    to the catalog, and the video settles once each chunk is catalogued or failed."""

    class FailsOnChunk1(VisionStage):
        async def on_event(self, subject, event, config):
            if event.envelope.chunk == 1:
                raise PermanentError("cannot decode chunk 1")
            return await super().on_event(subject, event, config)

    defaults = {
        "ingest": IngestConfig(local_roots=(str(media_dir),)),
        "catalog": replace(CatalogConfig(), database_url=f"sqlite:///{tmp_path / 'catalog.db'}"),
    }
    config = common_pb2.JobConfig(vad=common_pb2.VadOptions(chunk_s=10), labeler=FACE_ONLY.labeler)
    stages = [FailsOnChunk1 if cls is VisionStage else cls for cls in STAGES]
    source = common_pb2.Source(path=str(long_sample[0]))
    result = asyncio.run(run_local([source], tmp_path, config=config, defaults=defaults, stages=stages))
    assert result.job.state == common_pb2.JOB_STATE_FAILED
    (video,) = result.job.videos
    status = {s.stage: s for s in video.stages}
    chunks = status["vision"].chunks
    assert chunks >= 3 and status["vision"].chunks_failed == 1 and "cannot decode chunk 1" in status["vision"].reason
    assert status["vision"].state == common_pb2.STAGE_STATE_FAILED
    assert status["catalog"].chunks_done == chunks - 1 and status["catalog"].state == 0  # never all done
    (skipped,) = [e for e in result.of(SPEECH_SEGMENTED) if e.envelope.chunk == 1]
    cataloged = {x.segment_id for e in result.of(SEGMENTS_LABELED) for x in e.labels}
    assert len(cataloged) == len(long_sample[1]) - len(skipped.segments)
    assert not cataloged & {s.segment_id for s in skipped.segments}
