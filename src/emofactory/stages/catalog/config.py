from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogConfig:
    """Clips, the metadata database and releases (seed 000 §3.7, §4.2; seed 003 §3.1, §3.3, App. B-D)."""

    # SQLAlchemy URL: SQLite embedded by default, PostgreSQL in production
    # (postgresql+psycopg://user:password@host/db).
    database_url: str = "sqlite:///emofactory-catalog.db"
    # Clip MP4s are stream copies (exact frames through an edit list, no re-encode) where the
    # source is H.264 yuv420p + AAC and its keyframe before the segment is at most
    # copy_max_preroll_s early (the copy carries those frames); other clips, or off: x264.
    stream_copy: bool = True
    copy_max_preroll_s: float = 1.0
    # x264 preset of encoded clip MP4s (seed 000 §4.2: fast).
    preset: str = "fast"
    crf: int = 23
    # Clips cut at once: x264 on short clips leaves cores idle, so two cuts side by side go about
    # 1.2x faster on 2 cores (0: one per core).
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
