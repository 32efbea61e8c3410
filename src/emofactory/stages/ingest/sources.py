"""What a job's sources mean, before anything is downloaded: URL policy, the search modes of
seed 002 §3.1, stable video ids, and the duration / language filters."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

from emofactory.core.config import apply_options
from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.ingest.egress import Policy, narrowed
from emofactory.v1 import common_pb2

# YouTube's search-results filter for playlists ("sp" parameter, URL-encoded).
PLAYLIST_FILTER = "EgIQAw%253D%253D"


def check_url(url: str, allow_hosts: tuple[str, ...], field: str = "url") -> str:
    """http(s) only, to a host the egress policy allows (the URL a job names; every later connection
    is checked again by ingest's egress proxy)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        raise InvalidRequest(field, f"only http(s) URLs are accepted, not {scheme!r} ({url[:100]!r})")
    if not parts.hostname:
        raise InvalidRequest(field, f"{url[:100]!r} names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidRequest(field, f"{url[:100]!r} has a bad port") from exc
    Policy(allow_hosts).address(parts.hostname, port, field)
    return url


def check_local_path(path: str, roots: tuple[str, ...], field: str = "path") -> Path:
    if not path.startswith("/"):
        raise InvalidRequest(field, f"{path!r} is not an absolute path")
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
        raise InvalidRequest(field, f"{path!r} is outside the allowed roots (ingest.local_roots: {list(roots)})")
    if not resolved.is_file():
        raise InvalidRequest(field, f"{path!r} is not a file")
    return resolved


def search_targets(query: common_pb2.SearchQuery, config: IngestConfig, field: str = "search") -> list[str]:
    """yt-dlp inputs for a keyword search, one per keyword (seed 002 parser modes 1, 2, 4, 5)."""
    keywords = [k.strip() for k in query.keywords if k.strip()]
    if not keywords:
        raise InvalidRequest(f"{field}.keywords", "at least one non-empty keyword is required")
    count = query.max_results or config.max_items or config.search_results
    if query.target == common_pb2.SEARCH_TARGET_PLAYLISTS:
        return [f"https://www.youtube.com/results?search_query={quote_plus(k)}&sp={PLAYLIST_FILTER}" for k in keywords]
    return [f"ytsearch{count}:{k}" for k in keywords]


def video_id(identity: str) -> str:
    """A stable id from what identifies the video (extractor and id, S3 object, or file content)."""
    return "v" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def filter_reason(duration_s: float, language: str, config: IngestConfig) -> str:
    """Why a video is filtered out, or "" to keep it."""
    if config.min_duration_s and duration_s < config.min_duration_s:
        return f"shorter than min_duration_s: {duration_s:.1f} s < {config.min_duration_s:g} s"
    if config.max_duration_s and duration_s > config.max_duration_s:
        return f"longer than max_duration_s: {duration_s:.1f} s > {config.max_duration_s:g} s"
    if config.languages and not any((language or "").lower().startswith(l.lower()) for l in config.languages):
        return f"language {language or 'unknown'!r} is not one of {list(config.languages)}"
    return ""


def checked_config(defaults: IngestConfig, options) -> IngestConfig:
    try:
        config = apply_options(defaults, options)
    except ValueError as exc:
        raise InvalidRequest("config.ingest", str(exc)) from exc
    narrowed(defaults.allow_hosts, config.allow_hosts)
    if config.max_duration_s and config.min_duration_s > config.max_duration_s:
        raise InvalidRequest("config.ingest.min_duration_s", "is greater than max_duration_s")
    if config.max_items < 0:
        raise InvalidRequest("config.ingest.max_items", "must not be negative")
    return config


def describe(source: common_pb2.Source) -> str:
    kind = source.WhichOneof("kind")
    if kind == "search":
        return "search: " + ", ".join(source.search.keywords)
    if kind is None:
        raise PermanentError("a source names no url, search, path or s3_uri")
    return getattr(source, kind)
