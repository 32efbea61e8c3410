import pytest

from emofactory.core.config import StoreConfig
from emofactory.core.errors import InvalidRequest
from emofactory.core.store import FileStore, ObjectStore, check_key, object_key, parse_s3_uri
from emofactory.local import CREDENTIALS, credentials, private_file
from emofactory.v1 import common_pb2


def test_keys_are_deterministic_and_prefixed():
    assert object_key("v0123", "audio", "audio.wav") == "v0123/audio/audio.wav"


@pytest.mark.hostile
@pytest.mark.parametrize("video_id", ["..", "../etc", "a/b", "", ".hidden", "x" * 200, "v1\n"])
def test_ids_cannot_escape_their_prefix(video_id):
    with pytest.raises(InvalidRequest, match="video_id"):
        object_key(video_id, "audio", "audio.wav")


@pytest.mark.hostile
def test_stored_keys_are_checked_component_by_component():
    assert check_key("v1/vad/segments-abc.json")
    with pytest.raises(InvalidRequest):
        check_key("v1/../../secret")


def test_s3_uris():
    assert parse_s3_uri("s3://my-bucket/videos/a.mp4") == ("my-bucket", "videos/a.mp4")
    with pytest.raises(InvalidRequest, match="s3_uri"):
        parse_s3_uri("http://my-bucket/a.mp4")


@pytest.mark.hostile
def test_a_store_reads_only_its_own_bucket_and_those_the_operator_lists(tmp_path):
    own = FileStore(tmp_path, "emofactory")
    own.put_bytes("v1/ingest/info.json", b"{}", "application/json")
    (tmp_path / "other" / "a").mkdir(parents=True)
    (tmp_path / "other" / "a" / "b.mp4").write_bytes(b"theirs")
    assert own.get_bytes(common_pb2.ObjectRef(key="v1/ingest/info.json")) == b"{}"
    with pytest.raises(InvalidRequest, match="bucket 'other' is not readable here"):
        own.get_bytes(common_pb2.ObjectRef(bucket="other", key="a/b.mp4"))
    listed = FileStore(tmp_path, "emofactory", read_buckets=("other",))
    assert listed.get_bytes(common_pb2.ObjectRef(bucket="other", key="a/b.mp4")) == b"theirs"


@pytest.mark.hostile
def test_there_is_no_built_in_key_pair():
    with pytest.raises(ValueError, match="store.access_key and store.secret_key are not set"):
        ObjectStore(StoreConfig())


@pytest.mark.hostile
def test_the_local_stack_keeps_its_own_random_key_pair_readable_by_its_owner_alone(tmp_path):
    first = credentials(tmp_path)
    assert first == credentials(tmp_path)  # the same pair for the same data folder, every start
    assert len(first["secret_key"]) >= 30 and (tmp_path / CREDENTIALS).stat().st_mode & 0o777 == 0o600
    other = tmp_path / "other"
    other.mkdir()
    assert credentials(other)["secret_key"] != first["secret_key"]
    loose = tmp_path / "state.json"
    loose.write_text("{}")
    loose.chmod(0o644)
    assert private_file(loose, "{}").stat().st_mode & 0o777 == 0o600
