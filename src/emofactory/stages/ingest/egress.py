"""What ingest may fetch, checked on every connection, not only on the URL a job names.

yt-dlp follows redirects, reads pages for embedded media, walks playlists and fetches fragments; each of
those is a new connection to a host the job never named. So every download and resolution runs behind
an `EgressProxy`: a small HTTP proxy on 127.0.0.1 that yt-dlp must use (its `proxy` option), which
resolves each destination, refuses loopback, private, link-local, reserved and multicast addresses
unless the operator allow-listed the host or the address (`ingest.allow_hosts`), and then connects to
the very address it checked, so a name that resolves differently a moment later (DNS rebinding) gets
nowhere. A refused destination is never contacted: nothing of it can come back in an error."""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from emofactory.core.errors import InvalidRequest

HEAD_LIMIT = 64 * 1024  # a request head longer than this is refused


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


@dataclass(frozen=True)
class Policy:
    """Public addresses are allowed; an internal one only where its host name or the address itself
    is in `allow_hosts`."""

    allow_hosts: tuple[str, ...] = ()

    def address(self, host: str, port: int, field: str = "url") -> str:
        """The address to connect to for host:port, or InvalidRequest saying why not."""
        host = host.strip("[]").lower()
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise InvalidRequest(field, f"host {host[:100]!r} does not resolve") from exc
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if host not in self.allow_hosts:
            for ip in addresses:
                if _internal(ip) and str(ip) not in self.allow_hosts:
                    raise InvalidRequest(
                        field,
                        f"host {host[:100]!r} is a loopback or private address ({ip}); "
                        "the operator may allow-list it in ingest.allow_hosts",
                    )
        return str(addresses[0])


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copies a -> b until a closes, then half-closes b."""
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _tunnel(client: socket.socket, upstream: socket.socket) -> None:
    back = threading.Thread(target=_relay, args=(upstream, client), daemon=True)
    back.start()
    _relay(client, upstream)
    back.join()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(request head without its blank line, body bytes already read)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(8192)
        if not chunk or len(data) > HEAD_LIMIT:
            raise ValueError("incomplete or oversized request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _origin_request(head: bytes) -> tuple[str, int, bytes]:
    """An absolute-form proxy request (GET http://host/path) -> host, port and the origin-form head,
    its hop-by-hop and proxy headers dropped and the connection closed after one response."""
    request_line, *headers = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ", 2)
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not an http URL: {target[:100]}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in ("connection", "proxy-connection",
            "proxy-authorization", "keep-alive")]  # fmt: skip
    lines = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
    return parts.hostname, parts.port or 80, "\r\n".join(lines).encode("latin-1")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client = self.request
        client.settimeout(self.server.timeout_s)
        try:
            head, rest = _read_head(client)
            if head.startswith(b"CONNECT "):
                host, _, port = head.split(b" ", 2)[1].decode("latin-1").rpartition(":")
                upstream, first = self._connect(client, host, int(port)), rest
                reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
            else:
                host, port, origin = _origin_request(head)
                upstream, first, reply = self._connect(client, host, port), origin + rest, b""
        except (OSError, ValueError) as exc:
            self._answer(client, 400, f"bad proxy request: {str(exc)[:100]}")
            return
        if upstream is None:
            return
        with upstream:
            client.sendall(reply)
            upstream.sendall(first)
            _tunnel(client, upstream)

    def _connect(self, client: socket.socket, host: str, port: int) -> socket.socket | None:
        try:
            address = self.server.policy.address(host, port, "egress")
        except InvalidRequest as exc:
            self.server.refused.append(f"{host.strip('[]')[:100]}:{port}: {exc}")
            self._answer(client, 403, "refused by the ingest egress policy")
            return None
        return socket.create_connection((address, port), timeout=self.server.timeout_s)

    @staticmethod
    def _answer(client: socket.socket, status: int, text: str) -> None:
        reason = {400: "Bad Request", 403: "Forbidden"}[status]
        body = text.encode()
        head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        try:
            client.sendall(head.encode() + body)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, policy: Policy, timeout_s: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.policy, self.timeout_s = policy, timeout_s
        self.refused: list[str] = []


@dataclass
class EgressProxy:
    """`with EgressProxy(policy) as proxy:` pass `proxy.url` to yt-dlp; `proxy.refused` lists each
    destination it refused, and why."""

    policy: Policy
    timeout_s: float = 30.0
    refused: list[str] = field(default_factory=list)

    def __enter__(self) -> EgressProxy:
        self._server = _Server(self.policy, self.timeout_s)
        self.refused = self._server.refused
        self._thread = threading.Thread(target=self._server.serve_forever, name="egress-proxy", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def narrowed(server: Iterable[str], job: Iterable[str]) -> tuple[str, ...]:
    """A job's allow-list: a subset of the operator's, never more."""
    server, job = tuple(server), tuple(job)
    extra = sorted(set(job) - set(server))
    if extra:
        raise InvalidRequest(
            "config.ingest.allow_hosts",
            f"{', '.join(h[:100] for h in extra[:5])} not in the operator's ingest.allow_hosts: "
            "a job may narrow the allow-list, never widen it",
        )
    return job
