"""Seed 002's loop end to end, in one process: a job's release, an audio baseline trained on it with
the face as teacher, and the next job labelled by that baseline as its speech-emotion model (by path)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from emofactory.core.emotions import CANONICAL
from emofactory.core.events import SEGMENTS_LABELED
from emofactory.run_local import run_local
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.catalog.publish import create_release
from emofactory.stages.ingest.config import IngestConfig
from emofactory.training.run import train_release
from emofactory.v1 import catalog_pb2, common_pb2

FACE_ONLY = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(modalities=["face"], min_modalities=1))
AUDIO_ONLY = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(modalities=["audio"], min_modalities=1))


def test_a_speech_model_taught_by_the_face_on_one_release_labels_the_next_job(
    tmp_path, media_dir, speech_sample, monkeypatch
):
    root = tmp_path / "local"
    defaults = {
        "ingest": IngestConfig(local_roots=(str(media_dir),)),
        "catalog": replace(CatalogConfig(), database_url=f"sqlite:///{root / 'catalog.db'}"),
    }
    source = common_pb2.Source(path=str(speech_sample[0]))
    taught = asyncio.run(run_local([source], root, config=FACE_ONLY, defaults=defaults, job_id="teacher"))
    assert taught.job.state == common_pb2.JOB_STATE_SUCCEEDED
    request = catalog_pb2.CreateReleaseRequest(name="loop", neutral_ratio=0)
    release = create_release(taught.store, defaults["catalog"], request, tmp_path / "release")
    assert len(release.records) == len(speech_sample[1])

    result = train_release(tmp_path / "release", "audio", tmp_path / "model", teacher="face", teacher_min_confidence=0)
    assert result["audio_features"] == "whisper"  # the default: the labeler computes them the same way
    assert result["clips"]["audio"]["train"] + result["clips"]["audio"]["validation"] > 0

    monkeypatch.setenv("EMO_MODELS__SPEECH_EMOTION_PATH", str(tmp_path / "model" / "audio"))
    student = asyncio.run(run_local([source], root, config=AUDIO_ONLY, defaults=defaults, job_id="student"))
    assert student.job.state == common_pb2.JOB_STATE_SUCCEEDED, student.job
    (labeled,) = student.of(SEGMENTS_LABELED)
    assert len(labeled.labels) == len(speech_sample[1])
    for x in labeled.labels:
        assert x.audio.model == f"baseline-{release.release_id}"
        assert abs(sum(getattr(x.audio, c) for c in CANONICAL) - 1) < 1e-3
