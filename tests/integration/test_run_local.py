"""The pipeline in one process (`run_local`): the same stages as the services, on a folder store,
with the job accounting GetJob reports."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from emofactory.core.events import SEGMENTS_LABELED, SPEECH_SEGMENTED
from emofactory.pipeline import NAMES, STAGES
from emofactory.run_local import run_local
from emofactory.stages.catalog import db
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.ingest.config import IngestConfig
from emofactory.v1 import common_pb2

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
