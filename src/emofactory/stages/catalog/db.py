"""The metadata database: SQLAlchemy models (SQLite embedded, PostgreSQL in production), created
and upgraded by the Alembic migrations beside this file."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Video(Base):
    __tablename__ = "videos"

    video_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The source as given: a URL, a local path or an s3:// URI.
    source: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(35), default="")
    # The source group releases split by (series, franchise, playlist; else the video itself).
    group_key: Mapped[str] = mapped_column(String(255), index=True)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    info: Mapped[dict] = mapped_column(JSON, default=dict)
    # When its job was submitted (ingest records it in the info JSON); None for rows made before.
    ingested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Clip(Base):
    """One labelled speech segment as one job decided it (`clip_id`: the job and the segment), so a
    second job over the same video never rewrites the first one's labels; media keys are set for kept
    segments only, and the media of a segment, the same in every job, are cut once and shared."""

    __tablename__ = "clips"

    clip_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    segment_id: Mapped[str] = mapped_column(String(128), index=True, default="", server_default="")
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.video_id"), index=True)
    job_id: Mapped[str] = mapped_column(String(64), default="")
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    language: Mapped[str] = mapped_column(String(35), index=True, default="")
    mp4_key: Mapped[str] = mapped_column(Text, default="")
    wav_key: Mapped[str] = mapped_column(Text, default="")
    frame_key: Mapped[str] = mapped_column(Text, default="")
    faces_key: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    transcript_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    words: Mapped[list] = mapped_column(JSON, default=list)
    active_face: Mapped[dict] = mapped_column(JSON, default=dict)
    face_ratio: Mapped[float] = mapped_column(Float, default=0.0)
    face_scores: Mapped[dict] = mapped_column(JSON, default=dict)
    audio_scores: Mapped[dict] = mapped_column(JSON, default=dict)
    text_scores: Mapped[dict] = mapped_column(JSON, default=dict)
    fused_scores: Mapped[list] = mapped_column(JSON, default=list)
    label: Mapped[str] = mapped_column(String(16), index=True, default="")
    # The label's posterior; fusion_score is seed 003's F = σ(S(e*)), a ranking score.
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    fusion_score: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    kept: Mapped[bool] = mapped_column(Boolean, index=True, default=False)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    # One stable code per reason (Label.reason_codes).
    reason_codes: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    provenance: Mapped[dict] = mapped_column(JSON, default=dict)
    flags: Mapped[list] = mapped_column(JSON, default=list)
    sync_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    audio_duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Release(Base):
    __tablename__ = "releases"

    release_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    manifest_key: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ReleaseClip(Base):
    __tablename__ = "release_clips"

    release_id: Mapped[str] = mapped_column(ForeignKey("releases.release_id"), primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clips.clip_id"), primary_key=True)
    split: Mapped[str] = mapped_column(String(16), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Annotator(Base):
    """A person who labels clips on the review page (seed 003, App. C.1): signs in with a token only
    its hash is kept of; a lead also sees the results (annotators never see the factory's labels)."""

    __tablename__ = "annotators"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    lead: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Annotation(Base):
    """A clip of a release given to one annotator, and once answered their label: one of the seven,
    or `unsure` (skipped). One row per person and clip, so nobody is given a clip twice."""

    __tablename__ = "annotations"

    release_id: Mapped[str] = mapped_column(ForeignKey("releases.release_id"), primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clips.clip_id"), primary_key=True)
    annotator: Mapped[str] = mapped_column(ForeignKey("annotators.name"), primary_key=True)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    label: Mapped[str | None] = mapped_column(String(16), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Brings the database to the newest schema (creates it when empty)."""
    command.upgrade(alembic_config(url), "head")


@cache
def engine_for(url: str) -> Engine:
    """One migrated engine per URL per process."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    migrate(url)
    return create_engine(url, future=True)


def sessions(url: str) -> sessionmaker:
    return sessionmaker(engine_for(url), expire_on_commit=False)
