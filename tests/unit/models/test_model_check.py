"""Model settings fail before any work: a path that does not exist, is of no known format or does not
load stops the stage's preparation (the in-process runner, a service's start, the CLI) with the
setting's name and why; a service with one stays up NOT_SERVING and says why."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import grpc
import pytest
from click.testing import CliRunner

from emofactory.core.config import ModelsConfig
from emofactory.core.errors import SettingError
from emofactory.core.stage import StageContext
from emofactory.core.store import FileStore
from emofactory.local import free_port, grpc_health
from emofactory.models.backends import InProcessBackend
from emofactory.models.check import load_models
from emofactory.models.registry import LOADERS
from tests.models import tiny_audio_classifier


def load(name: str, **settings) -> None:
    config = ModelsConfig(**settings)
    load_models(InProcessBackend(config, LOADERS), config, [name])


def corrupt_whisper(folder):
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.bin").write_bytes(b"\0not a CTranslate2 model" * 40)
    return folder


@pytest.mark.parametrize(
    "model, setting, make, why",
    [
        ("speech_emotion", "speech_emotion_path", lambda p: p / "nope.h5", "does not exist"),
        ("speech_emotion", "speech_emotion_path", lambda p: p / "ser.wav", "is none of"),
        ("speech_emotion", "speech_emotion_path", lambda p: p / "ser.h5", "does not load"),
        ("facial_emotion", "facial_emotion_path", lambda p: p / "fer.hdf5", "does not load"),
        ("facial_emotion", "facial_emotion_path", lambda p: p / "face.tflite", "does not load"),
        ("whisper", "whisper_path", lambda p: p / "no-whisper", "lacks model.bin"),
        ("whisper", "whisper_path", lambda p: corrupt_whisper(p / "whisper"), "does not load"),
    ],
)
def test_a_model_path_that_cannot_run_is_an_error_naming_its_setting(tmp_path, model, setting, make, why):
    path = make(tmp_path)
    if path.suffix and not path.name.startswith("nope"):
        path.write_bytes(b"\x89HDF\r\n corrupt" * 100)  # a file of the right name, not of the right bytes
    with pytest.raises(SettingError, match=why) as err:
        load(model, **{setting: str(path)})
    assert err.value.setting == f"models.{setting}" and str(err.value).startswith(f"models.{setting}: ")


def test_a_model_that_loads_passes_and_stays_loaded(tmp_path):
    config = ModelsConfig(speech_emotion_path=str(tiny_audio_classifier(tmp_path / "w2v")))
    backend = InProcessBackend(config, LOADERS)
    load_models(backend, config, ["speech_emotion", "facial_emotion"])
    assert set(backend.models) == {"speech_emotion", "facial_emotion"}


def test_the_labeler_refuses_to_prepare_on_a_wrong_speech_emotion_path(tmp_path, monkeypatch):
    from emofactory.stages.labeler.stage import LabelerStage

    monkeypatch.setenv("EMO_MODELS__SPEECH_EMOTION_PATH", str(tmp_path / "typo.h5"))
    stage = LabelerStage(StageContext(FileStore(tmp_path / "store")))
    with pytest.raises(SettingError, match=r"models.speech_emotion_path: .*typo.h5 does not exist"):
        stage.prepare()


def test_the_vad_refuses_to_prepare_silero_without_a_model(tmp_path, monkeypatch):
    from emofactory.stages.vad.stage import VadStage

    monkeypatch.setenv("EMO_VAD__ENGINE", "silero")
    monkeypatch.setenv("EMO_VAD__SILERO_MODEL_PATH", str(tmp_path / "silero.onnx"))
    with pytest.raises(SettingError, match="vad.silero_model_path: cannot load"):
        VadStage(StageContext(FileStore(tmp_path / "store"))).prepare()


@pytest.mark.parametrize(
    "stage_name, env, setting",
    [
        ("catalog", ("EMO_CATALOG__PRESET", "turbo"), "catalog.preset"),
        ("vision", ("EMO_VISION__FPS", "100"), "vision.fps"),
    ],
)
def test_a_setting_a_job_could_not_ask_for_stops_the_stage_at_start(tmp_path, monkeypatch, stage_name, env, setting):
    """The process's defaults get the check a job's options get: named as the setting, before any work."""
    from emofactory.pipeline import stage_class

    monkeypatch.setenv(*env)
    stage = stage_class(stage_name)(StageContext(FileStore(tmp_path / "store")))
    with pytest.raises(SettingError) as err:
        stage.start()
    assert err.value.setting == setting and not str(err.value).startswith(f"{setting}: options.")


def test_emofactory_run_refuses_a_wrong_model_path_before_anything_starts(tmp_path, monkeypatch):
    from emofactory.cli import main

    video = tmp_path / "talk.mp4"
    video.write_bytes(b"not looked at")
    monkeypatch.setenv("EMO_DATA_DIR", str(tmp_path / "no-stack"))
    monkeypatch.setenv("EMO_MODELS__SPEECH_EMOTION_PATH", str(tmp_path / "ser.h5"))
    (tmp_path / "ser.h5").write_bytes(b"corrupt")
    result = CliRunner().invoke(main, ["run", str(video)])
    assert result.exit_code == 1, result.output
    assert "models.speech_emotion_path:" in result.output and "does not load" in result.output
    assert "face: mini-xception+facex" in result.output  # which model each modality uses, first
    assert "starting one" not in result.output and not (tmp_path / "run").exists()


def test_a_service_with_a_wrong_model_path_stays_not_serving_and_says_why(tmp_path):
    """No NATS or S3 needed: the models are checked before the service waits for them."""
    port = free_port()
    env = {  # none of a running stack's settings (its TLS and token): a bare service
        **{k: v for k, v in os.environ.items() if not k.startswith("EMO_")},
        "EMO_SERVER__GRPC_PORT": str(port),
        "EMO_STORE__ACCESS_KEY": "k",
        "EMO_STORE__SECRET_KEY": "s",
        "EMO_BUS__URL": f"nats://127.0.0.1:{free_port()}",
        "EMO_MODELS__SPEECH_EMOTION_PATH": str(tmp_path / "typo.h5"),
    }
    log = tmp_path / "labeler.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emofactory.serve", "labeler"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while "not serving" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert grpc_health(f"127.0.0.1:{port}") == 2  # NOT_SERVING, and still up
        from emofactory.v1 import labeler_pb2, labeler_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = labeler_pb2_grpc.LabelerServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.LabelSegments(labeler_pb2.LabelSegmentsRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "models.speech_emotion_path" in err.value.details() and "does not exist" in err.value.details()
        assert "models.speech_emotion_path" in log.read_text() and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
