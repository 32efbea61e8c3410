import pytest

from emofactory.core.errors import InvalidRequest
from emofactory.stages.ingest import sources, ytdlp
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.ingest.stage import egress
from emofactory.v1 import common_pb2


@pytest.mark.hostile
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.mp4", "not a url", "http:///a.mp4"])
def test_refuses_non_http_urls(url):
    with pytest.raises(InvalidRequest, match="url"):
        sources.check_url(url, ())


@pytest.mark.hostile
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.9", "169.254.169.254", "[::1]"])
def test_refuses_loopback_and_private_hosts_unless_allow_listed(host):
    with pytest.raises(InvalidRequest, match="loopback or private"):
        sources.check_url(f"http://{host}/video.mp4", ())
    assert sources.check_url(f"http://{host}/video.mp4", (host.strip("[]"),))


def test_search_modes_of_seed_002():
    config = IngestConfig(search_results=7)
    videos = common_pb2.SearchQuery(keywords=["talk show", "interview"], target=common_pb2.SEARCH_TARGET_VIDEOS)
    assert sources.search_targets(videos, config) == ["ytsearch7:talk show", "ytsearch7:interview"]
    playlists = common_pb2.SearchQuery(keywords=["drama"], target=common_pb2.SEARCH_TARGET_PLAYLISTS, max_results=3)
    (target,) = sources.search_targets(playlists, config)
    assert "search_query=drama" in target and sources.PLAYLIST_FILTER in target
    with pytest.raises(InvalidRequest, match="search.keywords"):
        sources.search_targets(common_pb2.SearchQuery(keywords=[" "]), config)


def test_filters_say_why():
    config = IngestConfig(min_duration_s=2400, languages=("ar",))
    assert "min_duration_s" in sources.filter_reason(600, "ar", config)
    assert "language" in sources.filter_reason(3000, "en", config)
    assert sources.filter_reason(3000, "ar-EG", config) == ""


@pytest.mark.hostile
def test_local_paths_only_under_allowed_roots(speech_sample, tmp_path):
    video = speech_sample[0]
    assert sources.check_local_path(str(video), (str(video.parent),)) == video.resolve()
    with pytest.raises(InvalidRequest, match="outside the allowed roots"):
        sources.check_local_path(str(video), (str(tmp_path),))
    with pytest.raises(InvalidRequest, match="absolute"):
        sources.check_local_path("relative.mp4", (str(tmp_path),))


def test_video_ids_are_stable():
    assert sources.video_id("Youtube:abc") == sources.video_id("Youtube:abc") != sources.video_id("Youtube:abd")
    assert sources.video_id("x").startswith("v") and len(sources.video_id("x")) == 17


LOCAL = IngestConfig(allow_hosts=("127.0.0.1",))  # the tests' web server


def test_yt_dlp_resolves_and_downloads_from_a_web_server(http_server, speech_sample, tmp_path):
    url = f"{http_server}/{speech_sample[0].name}"
    with egress(LOCAL) as proxy:
        (entry,) = ytdlp.resolve(url, LOCAL, proxy)
        path, info = ytdlp.download(url, tmp_path, LOCAL, proxy)
    assert entry.identity.startswith("Generic:")
    assert path.suffix == ".mp4" and path.read_bytes() == speech_sample[0].read_bytes()
    assert info["webpage_url"] == url


def test_missing_video_is_a_permanent_failure(http_server, tmp_path):
    from emofactory.core.errors import PermanentError

    with pytest.raises(PermanentError, match="404"), egress(LOCAL) as proxy:
        ytdlp.download(f"{http_server}/nothing-here.mp4", tmp_path, LOCAL, proxy)
