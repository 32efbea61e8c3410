"""Shared fixtures: generated media (once per session), the assets folder, and one local stack
(nats-server with JetStream, SeaweedFS S3, the services) for the integration tests. Each test is
marked with its level from its folder (unit, integration, e2e, chart): `pytest -m unit` runs one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from dev import sample
from dev.assets import ASSETS, SER_WEIGHTS
from dev.assets import present as assets_present
from dev.webserver import serve_directory
from emofactory.core.channels import open_channel
from emofactory.core.config import StoreConfig, load_section
from emofactory.core.store import ObjectStore
from emofactory.local import LocalStack
from emofactory.pipeline import NAMES
from emofactory.v1 import ingest_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


LEVELS = ("unit", "integration", "e2e", "chart")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        level = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if level in LEVELS:
            item.add_marker(getattr(pytest.mark, level))


@pytest.fixture(scope="session")
def assets() -> Path:
    if not assets_present():
        pytest.skip(f"the test assets are absent from {ASSETS} (set EMOFACTORY_ASSETS to their folder)")
    return ASSETS


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def speech_sample(media_dir):
    """(mp4 path, true phrase spans): four phrases, two voices, 1 s pauses."""
    path = media_dir / "sample.mp4"
    return path, sample.sample_video(path)


@pytest.fixture(scope="session")
def long_sample(media_dir):
    """(mp4 path, true phrase spans): twelve phrases, about 45 s: several chunks of vad.chunk_s 10, and
    vision at 10 fps works for several seconds."""
    path = media_dir / "long.mp4"
    return path, sample.sample_video(path, repeat=3)


@pytest.fixture(scope="session")
def silent_video(media_dir, speech_sample) -> Path:
    """The sample's picture with no audio track at all."""
    return sample.mux_video(speech_sample[0].with_suffix(".wav"), media_dir / "noaudio.mp4", audio=False)


@pytest.fixture(scope="session")
def not_a_video(media_dir) -> Path:
    path = media_dir / "notes.mp4"
    path.write_bytes(b"this is a text file with a video's name\n" * 50)
    return path


@pytest.fixture(scope="session")
def corrupt_video(media_dir, speech_sample) -> Path:
    """The sample's first 30 KB: a header that promises more than is there."""
    path = media_dir / "truncated.mp4"
    path.write_bytes(speech_sample[0].read_bytes()[:30_000])
    return path


@pytest.fixture(scope="session")
def http_server(media_dir):
    """A local HTTP server over the media folder, as yt-dlp's generic extractor sees the web."""
    url, server = serve_directory(media_dir)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, media_dir):
    """The stack with the production topology, but with a 5 s ack wait (and 1 s heartbeats) so that
    a killed worker's message comes back within a test."""
    data = tmp_path_factory.mktemp("stack")
    topology = yaml.safe_load((ROOT / "deploy" / "jetstream.yaml").read_text())
    topology["consumers"] = {name: {**topology["consumers"].get(name, {}), "ack_wait_s": 5} for name in NAMES}
    (data / "jetstream.yaml").write_text(yaml.safe_dump(topology))
    env = {
        "EMO_INGEST__LOCAL_ROOTS": str(media_dir),
        "EMO_INGEST__ALLOW_HOSTS": "127.0.0.1",  # the tests' web server; jobs may only narrow this
        "EMO_BUS__NAK_DELAYS_S": "0.2,0.5,1",
        "EMO_BUS__HEARTBEAT_S": "1",
    }
    # GPL-3.0 weights, used by path only; without them labels say the audio modality is missing
    if SER_WEIGHTS.is_file():
        env["EMO_MODELS__SPEECH_EMOTION_PATH"] = str(SER_WEIGHTS)
    with LocalStack(data, env=env, topology=data / "jetstream.yaml") as running:
        previous = dict(os.environ)
        os.environ.update(running.env())  # clients in the tests read the same settings
        yield running
        os.environ.clear()
        os.environ.update(previous)


@pytest.fixture(scope="module")
def ingest(stack):
    with open_channel(stack.address("ingest")) as channel:
        yield ingest_pb2_grpc.IngestServiceStub(channel)


@pytest.fixture(scope="module")
def store(stack):
    return ObjectStore(load_section(StoreConfig, "store"))
