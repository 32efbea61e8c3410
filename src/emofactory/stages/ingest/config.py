from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestConfig:
    """Sources and filters (seed 000 §3.1, seed 002 §3.1, seed 003: SpEmoC keeps videos >= 40 min)."""

    # Keep videos at least / at most this long (0: no limit). SpEmoC's corpus used min 2400 s.
    min_duration_s: float = 0.0
    max_duration_s: float = 0.0
    # Keep only videos whose info names one of these languages (empty: any).
    languages: tuple[str, ...] = ()
    # At most this many videos per job (0: no limit).
    max_items: int = 0
    # Hosts that may be fetched although they resolve to loopback or private addresses.
    allow_hosts: tuple[str, ...] = ()
    # Directories whose files may be ingested by path (empty: no local paths).
    local_roots: tuple[str, ...] = ()
    # Results per keyword when a search names no count.
    search_results: int = 10
    # yt-dlp format: the best single MP4 with audio and video, else best MP4 video + M4A audio merged.
    format: str = "best[ext=mp4][vcodec!=none][acodec!=none]/bestvideo[ext=mp4]+bestaudio[ext=m4a]/best"
    socket_timeout_s: float = 30.0
    default_language: str = "en-US"
    # A job whose labels cannot be kept with the models there are (the labeler's min_modalities beyond
    # the modalities that have a model) fails SubmitJob with INVALID_ARGUMENT; on: it is accepted, and
    # SubmitJobResponse.warnings says why its dataset will be empty (the operator's choice, not a job's).
    allow_unkeepable_jobs: bool = False
