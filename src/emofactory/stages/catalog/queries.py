"""Reading the catalog: filtered, paged clip lists and per-class statistics."""

from __future__ import annotations

import math
from collections import defaultdict

from sqlalchemy import select

from emofactory.core.emotions import emotion_name, emotion_value
from emofactory.core.errors import InvalidRequest
from emofactory.stages.catalog import db
from emofactory.v1 import catalog_pb2, common_pb2

MAX_PAGE = 1000
MAX_ID = 160  # ids, tokens and language tags: longer ones match nothing, so they are refused


def check_filter(request: catalog_pb2.ListClipsRequest, field: str = "") -> None:
    """Each filter field where it enters: known emotions, a confidence in [0, 1], short texts without
    NUL, a page size in range."""
    at = f"{field}." if field else ""
    known = set(common_pb2.Emotion.values()) - {common_pb2.EMOTION_UNSPECIFIED}
    unknown = [e for e in request.labels if e not in known]
    if unknown:
        raise InvalidRequest(f"{at}labels", f"unknown emotion values {unknown[:5]}")
    if not (math.isfinite(request.min_confidence) and 0 <= request.min_confidence <= 1):
        raise InvalidRequest(f"{at}min_confidence", f"must be in [0, 1], not {request.min_confidence}")
    for name in ("language", "video_id", "split", "page_token", "release", "job_id"):
        value = getattr(request, name)
        if len(value) > MAX_ID or "\0" in value:
            raise InvalidRequest(f"{at}{name}", f"at most {MAX_ID} characters, no NUL ({value[:40]!r}...)")
    if not 0 <= request.page_size <= MAX_PAGE:
        raise InvalidRequest(f"{at}page_size", f"must be 0 (100) to {MAX_PAGE}, not {request.page_size}")


def clip_query(request: catalog_pb2.ListClipsRequest):
    """SELECT (Clip, Video, split) rows matching the request's filters, in clip_id order."""
    check_filter(request)
    split_column = db.ReleaseClip.split if request.release else None
    query = select(db.Clip, db.Video, split_column).join(db.Video, db.Video.video_id == db.Clip.video_id)
    if request.release:
        query = query.join(db.ReleaseClip, db.ReleaseClip.clip_id == db.Clip.clip_id).where(
            db.ReleaseClip.release_id == request.release
        )
        if request.split:
            query = query.where(db.ReleaseClip.split == request.split)
    elif request.split:
        raise InvalidRequest("split", "needs a release: splits belong to releases")
    if not request.include_rejected:
        query = query.where(db.Clip.kept.is_(True))
    if request.labels:
        query = query.where(db.Clip.label.in_([emotion_name(e) for e in request.labels]))
    if request.min_confidence:
        query = query.where(db.Clip.confidence >= request.min_confidence)
    if request.language:
        query = query.where(db.Clip.language.like(f"{request.language}%"))
    if request.video_id:
        query = query.where(db.Clip.video_id == request.video_id)
    if request.job_id:
        query = query.where(db.Clip.job_id == request.job_id)
    return query.order_by(db.Clip.clip_id)


def list_page(session, request: catalog_pb2.ListClipsRequest) -> tuple[list[tuple], str]:
    """One page of (Clip, Video, split) and the token of the next page ("" at the end).
    The token is the last clip id: pages stay right while clips are added."""
    size = request.page_size or 100
    query = clip_query(request)
    if request.page_token:
        query = query.where(db.Clip.clip_id > request.page_token)
    rows = session.execute(query.limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1][0].clip_id if more and rows else "")


def stats(session, language: str = "", release: str = "") -> catalog_pb2.GetStatsResponse:
    """Per class (and per language, and per split of a release): clips and seconds, like seed 002's tables."""
    request = catalog_pb2.ListClipsRequest(language=language, release=release)
    cells: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for clip, _, split in session.execute(clip_query(request)).all():
        cell = cells[(clip.label, clip.language, split or "")]
        cell[0] += 1
        cell[1] += clip.duration_s
    out = catalog_pb2.GetStatsResponse()
    for (label, lang, split), (count, seconds) in sorted(cells.items()):
        emotion = emotion_value(label)
        out.classes.add(emotion=emotion, language=lang, clips=count, duration_s=seconds, split=split)
        out.clips += count
        out.duration_s += seconds
    return out
