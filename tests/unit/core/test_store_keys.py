import pytest

from emofactory.core.errors import InvalidRequest
from emofactory.core.store import check_key, object_key, parse_s3_uri


def test_keys_are_deterministic_and_prefixed():
    assert object_key("v0123", "audio", "audio.wav") == "v0123/audio/audio.wav"


@pytest.mark.parametrize("video_id", ["..", "../etc", "a/b", "", ".hidden", "x" * 200, "v1\n"])
def test_ids_cannot_escape_their_prefix(video_id):
    with pytest.raises(InvalidRequest, match="video_id"):
        object_key(video_id, "audio", "audio.wav")


def test_stored_keys_are_checked_component_by_component():
    assert check_key("v1/vad/segments-abc.json")
    with pytest.raises(InvalidRequest):
        check_key("v1/../../secret")


def test_s3_uris():
    assert parse_s3_uri("s3://my-bucket/videos/a.mp4") == ("my-bucket", "videos/a.mp4")
    with pytest.raises(InvalidRequest, match="s3_uri"):
        parse_s3_uri("http://my-bucket/a.mp4")
