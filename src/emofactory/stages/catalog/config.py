from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogConfig:
    """Clips, the metadata database and releases (seed 000 §3.7, §4.2; seed 003 §3.1, §3.3, App. B-D)."""

    # SQLAlchemy URL: SQLite embedded by default, PostgreSQL in production
    # (postgresql+psycopg://user:password@host/db).
    database_url: str = "sqlite:///emofactory-catalog.db"
    # x264 preset of the clip MP4s. Seed 000 §4.2 says fast; veryfast cut the benchmark's 100 clips
    # 1.9x faster (26 s, not 49 s, on 2 cores) into 7 % fewer bytes at the same crf (bench.catalog).
    preset: str = "veryfast"
    crf: int = 23
    # Clips are cut a group at a time, from one decode (clips.span_groups): the next segment joins
    # the group when at most group_gap_s of silence lies between (decoded for nothing) and the group
    # spans at most group_max_s, so a chunk of vad.chunk_s (60 s) is groups enough for every core
    # (bench.pipeline, 2 cores, chunks of 60 s: catalog 58-68 busy-s with 20, 76 with 60).
    group_gap_s: float = 2.0
    group_max_s: float = 20.0
    # Groups encoded at once (0: one per core).
    cut_workers: int = 0
    # Sync check (seed 003 §3.1): |duration(audio) - (t_end - t_start)| may be at most this.
    sync_tolerance_s: float = 0.1
    # info-JSON fields that name a source group (series, franchise, playlist), first found wins;
    # a video with none is its own group.
    group_fields: tuple[str, ...] = ("series", "playlist_id")
    # Release defaults (seed 003: 70/10/20 and a neutral share of about 15 %).
    split_ratios: tuple[float, ...] = (0.7, 0.1, 0.2)
    neutral_ratio: float = 0.15
    # Clips per WebDataset shard.
    shard_size: int = 1000
    # The review page (seed 003, App. C.1), an HTTP app beside the gRPC API on this port (0: none).
    review_port: int = 0
    # Distinct annotators' labels each clip needs (seed 003: at least three), and how long a clip
    # given to someone stays theirs before it may go to another.
    review_annotators: int = 3
    review_lease_s: float = 1800.0
    # Cookies only over HTTPS: set where the page is served behind TLS.
    review_secure_cookie: bool = False
