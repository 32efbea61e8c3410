"""Ingest fetches only what the operator allows, on every connection yt-dlp makes: a redirect or media
embedded in an allowed page that points at an internal host is refused before that host is contacted,
and nothing of it comes back in the error. The "internal" server listens on 127.0.0.2, which the
operator's allow-list (127.0.0.1, the allowed web server) does not name."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.stages.ingest import sources
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.ingest.egress import EgressProxy, Policy
from emofactory.stages.ingest.stage import fetch
from emofactory.v1 import common_pb2

pytestmark = pytest.mark.hostile

SECRET = b"INTERNAL-SECRET-BODY"
ALLOWED = IngestConfig(allow_hosts=("127.0.0.1",), socket_timeout_s=5)


def serve(host: str, routes: dict[str, tuple[int, dict, bytes]]) -> tuple[str, list[str], http.server.HTTPServer]:
    """A web server on host answering each path from `routes` (status, headers, body); it records every
    path it is asked for."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            status, headers, body = routes.get(self.path, (404, {}, b"no"))
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://{host}:{server.server_address[1]}", seen, server


@pytest.fixture
def internal(speech_sample):
    video = speech_sample[0].read_bytes()
    url, seen, server = serve("127.0.0.2", {"/secret.mp4": (200, {"Content-Type": "video/mp4"}, video),
                                            "/admin": (200, {}, SECRET)})  # fmt: skip
    yield url, seen
    server.shutdown()


@pytest.fixture
def allowed(internal, speech_sample):
    inside, _ = internal
    page = f'<html><body><video src="{inside}/secret.mp4"></video></body></html>'.encode()
    url, seen, server = serve("127.0.0.1", {
        "/video.mp4": (200, {"Content-Type": "video/mp4"}, speech_sample[0].read_bytes()),
        "/redirect.mp4": (302, {"Location": f"{inside}/secret.mp4"}, b""),
        "/page.html": (200, {"Content-Type": "text/html"}, page),
    })  # fmt: skip
    yield url, seen
    server.shutdown()


def download(url: str, tmp_path):
    return fetch(common_pb2.Source(url=url), ALLOWED, None, tmp_path)


def test_an_allowed_host_downloads_through_the_proxy(allowed, speech_sample, tmp_path):
    url, seen = allowed
    path, info = download(f"{url}/video.mp4", tmp_path)
    assert path.read_bytes() == speech_sample[0].read_bytes() and seen and info["webpage_url"].endswith("video.mp4")


@pytest.mark.parametrize("path", ["/redirect.mp4", "/page.html"])
def test_a_redirect_or_embedded_media_to_an_internal_host_is_refused_uncontacted(allowed, internal, tmp_path, path):
    url, _ = allowed
    with pytest.raises(PermanentError, match=r"refused to fetch 127\.0\.0\.2:\d+: .*loopback or private") as err:
        download(f"{url}{path}", tmp_path)
    assert internal[1] == [] and SECRET.decode() not in str(err.value)


def test_the_proxy_refuses_a_tunnel_to_an_internal_host(internal):
    inside, seen = internal
    port = int(inside.rsplit(":", 1)[1])
    with EgressProxy(Policy(("127.0.0.1",)), 5) as proxy:
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=5) as s:
            s.sendall(f"CONNECT 127.0.0.2:{port} HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n".encode())
            answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 403") and SECRET not in answer and seen == []
    assert proxy.refused and proxy.refused[0].startswith(f"127.0.0.2:{port}")


def test_the_policy_names_the_address_it_checked():
    assert Policy(("127.0.0.1",)).address("127.0.0.1", 80) == "127.0.0.1"
    assert Policy(("localhost",)).address("localhost", 80) in ("127.0.0.1", "::1")
    with pytest.raises(InvalidRequest, match="loopback or private"):
        Policy(()).address("127.0.0.1", 80)
    with pytest.raises(InvalidRequest, match="loopback or private"):
        Policy(()).address("::ffff:10.0.0.1", 80)  # an IPv4 address dressed as IPv6


def test_a_job_may_narrow_the_allow_list_never_widen_it():
    server = IngestConfig(allow_hosts=("127.0.0.1", "media.internal"))
    narrowed = sources.checked_config(server, common_pb2.IngestOptions(allow_hosts=["127.0.0.1"]))
    assert narrowed.allow_hosts == ("127.0.0.1",)
    assert sources.checked_config(server, None).allow_hosts == server.allow_hosts
    for job in (["169.254.169.254"], ["127.0.0.1", "10.0.0.1"]):
        with pytest.raises(InvalidRequest, match="never widen") as err:
            sources.checked_config(server, common_pb2.IngestOptions(allow_hosts=job))
        assert err.value.field == "config.ingest.allow_hosts"
    with pytest.raises(InvalidRequest, match="never widen"):  # no operator list: a job can open nothing
        sources.checked_config(IngestConfig(), common_pb2.IngestOptions(allow_hosts=["127.0.0.1"]))
