from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from emofactory.core.config import options_over
from emofactory.core.errors import InvalidRequest

# x264's presets, fastest first.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
MAX_HEIGHT, MAX_FPS = 4320, 240.0


@dataclass(frozen=True)
class Encoding:
    """How clips are encoded: x264's preset and crf, at most `max_height` pixels high (the width keeps
    the aspect; 0: the source's size) and at most `max_fps` frames a second (0: the source's rate)."""

    preset: str
    crf: int
    max_height: int = 0
    max_fps: float = 0.0

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The clip's even frame size for an upright source frame of width x height."""
        if self.max_height and height > self.max_height:
            width, height = round(width * self.max_height / height), self.max_height
        return width - width % 2, height - height % 2

    def rate(self, source: Fraction | None) -> Fraction:
        source = Fraction(source or 25)
        return min(source, Fraction(self.max_fps).limit_denominator(1001)) if self.max_fps else source


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
    # Clips at most this many pixels high, the width keeping the aspect (0: the source's size), and at
    # most this many frames a second (0: the source's rate). The labels never see it: the models read
    # the source.
    clip_max_height: int = 0
    clip_max_fps: float = 0.0
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

    @property
    def encoding(self) -> Encoding:
        return Encoding(self.preset, self.crf, self.clip_max_height, self.clip_max_fps)


def check_clip_size(max_height: int, max_fps: float, prefix: str) -> None:
    if max_height != 0 and not 16 <= max_height <= MAX_HEIGHT:
        raise InvalidRequest(f"{prefix}clip_max_height", f"0 (the source's) or 16 to {MAX_HEIGHT}, not {max_height}")
    if not (math.isfinite(max_fps) and (max_fps == 0 or 1 <= max_fps <= MAX_FPS)):
        raise InvalidRequest(f"{prefix}clip_max_fps", f"0 (the source's) or 1 to {MAX_FPS:g}, not {max_fps}")


def checked_options(defaults: CatalogConfig, options) -> CatalogConfig:
    """The options over the defaults, refusing clip encodings x264 or a sane clip cannot take."""
    config = options_over(defaults, options)
    if config.preset not in PRESETS:
        raise InvalidRequest("options.preset", f"one of {', '.join(PRESETS)}, not {config.preset[:40]!r}")
    if not 0 <= config.crf <= 51:
        raise InvalidRequest("options.crf", f"must be 0 to 51, not {config.crf}")
    check_clip_size(config.clip_max_height, config.clip_max_fps, "options.")
    return config
