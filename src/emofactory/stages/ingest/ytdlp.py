"""yt-dlp: resolve a URL or search into single videos, and download one as MP4 with its info JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yt_dlp
from yt_dlp.utils import DownloadError, ExtractorError

from emofactory.core.errors import PermanentError, TransientError
from emofactory.stages.ingest.config import IngestConfig

log = logging.getLogger("yt_dlp")

# yt-dlp messages that no retry can change.
_PERMANENT = (
    "Unsupported URL",
    "HTTP Error 4",
    "is not a valid URL",
    "Unable to extract",
    "not available",
    "Private video",
    "removed",
    "No video formats",
    "Requested format is not available",
)


@dataclass(frozen=True)
class Entry:
    """One video found while resolving a source."""

    url: str
    identity: str
    title: str
    duration_s: float
    language: str


def _options(config: IngestConfig, proxy: str, **extra) -> dict:
    return {
        "proxy": proxy,  # every connection goes through ingest's egress proxy (egress.py)
        "logger": log,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "socket_timeout": config.socket_timeout_s,
        "retries": 2,
        **extra,
    }


def _classified(exc: Exception, what: str) -> Exception:
    message = str(exc).removeprefix("ERROR: ")
    if any(marker in message for marker in _PERMANENT):
        return PermanentError(f"{what}: {message}")
    return TransientError(f"{what}: {message}")


def _entry(info: dict) -> Entry:
    return Entry(
        url=info.get("webpage_url") or info.get("url") or "",
        identity=f"{info.get('ie_key') or info.get('extractor_key') or 'generic'}:{info.get('id')}",
        title=info.get("title") or "",
        duration_s=float(info.get("duration") or 0.0),
        language=info.get("language") or "",
    )


def _is_playlist(item: dict) -> bool:
    return (item.get("ie_key") or "").endswith("Tab") or "list=" in (item.get("url") or "")


def resolve(target: str, config: IngestConfig, proxy: str, limit: int = 0, depth: int = 2) -> list[Entry]:
    """Single videos behind a URL, playlist URL or ytsearch query; playlists of playlists are expanded.
    `proxy`: the egress proxy's URL."""
    extra = {"extract_flat": "in_playlist"}
    if limit:
        extra["playlistend"] = limit
    try:
        with yt_dlp.YoutubeDL(_options(config, proxy, **extra)) as ydl:
            info = ydl.extract_info(target, download=False)
    except (DownloadError, ExtractorError) as exc:
        raise _classified(exc, f"resolving {target}") from exc
    if info.get("_type") not in ("playlist", "multi_video"):
        return [_entry(info)]
    entries: list[Entry] = []
    for item in info.get("entries") or []:
        if limit and len(entries) >= limit:
            break
        if _is_playlist(item):
            if depth > 0:
                entries += resolve(item["url"], config, proxy, limit - len(entries) if limit else 0, depth - 1)
            continue
        entries.append(_entry(item))
    return entries


def download(url: str, out_dir: Path, config: IngestConfig, proxy: str) -> tuple[Path, dict]:
    """Downloads one video as MP4 into out_dir through the egress proxy at `proxy`; returns its path and
    yt-dlp's info dict."""
    options = _options(
        config,
        proxy,
        format=config.format,
        merge_output_format="mp4",
        outtmpl={"default": str(out_dir / "source.%(ext)s")},
        noplaylist=True,
        writeinfojson=False,
    )
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
            info = ydl.sanitize_info(info)
    except (DownloadError, ExtractorError) as exc:
        raise _classified(exc, f"downloading {url}") from exc
    files = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
    if not files or not files[0].exists():
        raise PermanentError(f"downloading {url}: yt-dlp wrote no file")
    return files[0], info
