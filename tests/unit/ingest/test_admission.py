"""No silent empty datasets: SubmitJob refuses a job whose labels cannot be kept with the models there
are (INVALID_ARGUMENT naming the settings), or accepts it with a warning where the operator allows."""

from __future__ import annotations

import pytest

from emofactory.core.errors import InvalidRequest
from emofactory.pipeline import STAGES
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.ingest.server import IngestServicer
from emofactory.v1 import common_pb2

FACE_ONLY = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(modalities=["face"], min_modalities=1))
BOTH = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(min_modalities=2))  # face and audio, each label


@pytest.fixture
def no_ser(monkeypatch):
    monkeypatch.delenv("EMO_CONFIG", raising=False)
    monkeypatch.delenv("EMO_MODELS__SPEECH_EMOTION_PATH", raising=False)


def test_a_job_that_would_keep_nothing_is_refused_naming_the_settings(no_ser):
    servicer = IngestServicer(None, IngestConfig(), STAGES)
    with pytest.raises(InvalidRequest) as err:
        servicer.unkeepable(BOTH)
    assert err.value.field == "config.labeler.min_modalities"
    assert "only face has a model" in str(err.value) and "models.speech_emotion_path" in str(err.value)
    vote = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(strategy="vote"))
    with pytest.raises(InvalidRequest, match="config.labeler.strategy: no label would be kept"):
        servicer.unkeepable(vote)
    assert servicer.unkeepable(FACE_ONLY) == []
    assert servicer.unkeepable(common_pb2.JobConfig()) == []  # the defaults keep what one modality is sure of


def test_the_operator_may_accept_such_a_job_with_a_warning(no_ser):
    warnings = IngestServicer(None, IngestConfig(allow_unkeepable_jobs=True), STAGES).unkeepable(BOTH)
    assert len(warnings) == 1 and warnings[0].startswith("config.labeler.min_modalities: no label would be kept")


def test_a_job_with_the_models_it_fuses_is_accepted(no_ser, monkeypatch, tmp_path):
    (tmp_path / "ser.h5").write_bytes(b"weights")  # SubmitJob reads no weights: the services load them
    monkeypatch.setenv("EMO_MODELS__SPEECH_EMOTION_PATH", str(tmp_path / "ser.h5"))
    assert IngestServicer(None, IngestConfig(), STAGES).unkeepable(BOTH) == []


def test_bad_options_still_name_their_field(no_ser):
    bad = common_pb2.JobConfig(labeler=common_pb2.LabelerOptions(min_modalities=9))
    with pytest.raises(InvalidRequest) as err:
        IngestServicer(None, IngestConfig(), STAGES).unkeepable(bad)
    assert err.value.field == "config.labeler.min_modalities" and "must be 1 to 3" in str(err.value)
    slow = common_pb2.JobConfig(catalog=common_pb2.CatalogOptions(preset="placebo-turbo"))
    with pytest.raises(InvalidRequest) as err:
        IngestServicer(None, IngestConfig(), STAGES).unkeepable(slow)
    assert err.value.field == "config.catalog.preset" and "ultrafast" in str(err.value)
