"""Who labels which clip of a release, and what they said, in the catalog's database: each clip goes
to at least `needed` distinct annotators, never twice to the same one; a clip given out and not
answered within the lease goes to someone else. Functions over a SQLAlchemy session; those that
write commit. Assignment is serialised per release (a row lock on PostgreSQL, `ASSIGNING` in a process),
so annotators asking at the same moment never push a clip past what it needs."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from emofactory.core.classes import CANONICAL
from emofactory.core.errors import InvalidRequest, NotFound, PermanentError
from emofactory.stages.catalog import db

UNSURE = "unsure"  # skipped: the annotator is never given the clip again, and it needs someone else
ANSWERS = (*CANONICAL, UNSURE)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
ASSIGNING = threading.Lock()


class NotYours(PermanentError):
    """A label for a clip this annotator was not given."""


class AlreadyAnswered(PermanentError):
    """A second, different label from the same annotator for the same clip."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_annotator(session: Session, name: str, lead: bool = False) -> str:
    """A new token for `name` (replacing any earlier one); only its hash is stored."""
    if not NAME.fullmatch(name or ""):
        raise InvalidRequest("name", "1-64 characters: letters, digits, '.', '_', '@', '-', starting alphanumeric")
    token = secrets.token_urlsafe(24)
    session.merge(db.Annotator(name=name, token_sha256=token_hash(token), lead=lead))
    session.commit()
    return token


def annotator_of(session: Session, token: str) -> db.Annotator | None:
    if not token or len(token) > 256:
        return None
    return session.scalar(select(db.Annotator).where(db.Annotator.token_sha256 == token_hash(token)))


def release_or_404(session: Session, release_id: str) -> db.Release:
    release = session.get(db.Release, release_id) if len(release_id) <= 64 else None
    if release is None:
        raise NotFound(f"no release {release_id!r}")
    return release


def _taken(release_id: str, live_since: datetime):
    """Per clip: the labels it has, plus the unanswered assignments still within their lease."""
    a = db.Annotation
    counted = or_(a.label.in_(CANONICAL), and_(a.label.is_(None), a.assigned_at >= live_since))
    return (
        select(a.clip_id, func.count().label("n"))
        .where(a.release_id == release_id, counted)
        .group_by(a.clip_id)
        .subquery()
    )


def next_clip(session: Session, release_id: str, annotator: str, needed: int, lease_s: float) -> str | None:
    """The clip this annotator should label now (None: nothing left for them). Their unanswered clip
    first, so a reload shows the same one; else the clip nearest to `needed` labels that they have
    not seen, so clips complete one after another; ties in the release's order."""
    with ASSIGNING:
        session.execute(select(db.Release).where(db.Release.release_id == release_id).with_for_update())
        a, now = db.Annotation, datetime.now(UTC)
        pending = session.scalar(
            select(a).where(a.release_id == release_id, a.annotator == annotator, a.label.is_(None)).limit(1)
        )
        if pending is not None:
            pending.assigned_at = now
            session.commit()
            return pending.clip_id
        taken = _taken(release_id, now - timedelta(seconds=lease_s))
        seen = select(a.clip_id).where(a.release_id == release_id, a.annotator == annotator)
        rc, n = db.ReleaseClip, func.coalesce(taken.c.n, 0)
        clip_id = session.scalar(
            select(rc.clip_id)
            .outerjoin(taken, taken.c.clip_id == rc.clip_id)
            .where(rc.release_id == release_id, rc.clip_id.not_in(seen), n < needed)
            .order_by(n.desc(), rc.split, rc.position, rc.clip_id)
            .limit(1)
        )
        if clip_id is not None:
            session.add(db.Annotation(release_id=release_id, clip_id=clip_id, annotator=annotator, assigned_at=now))
        session.commit()
        return clip_id


def in_release(session: Session, release_id: str, clip_id: str) -> db.Clip:
    found = session.get(db.ReleaseClip, (release_id, clip_id)) if len(clip_id) <= 128 else None
    if found is None:
        raise NotFound(f"no clip {clip_id!r} in release {release_id!r}")
    return session.get(db.Clip, clip_id)


def answer(session: Session, release_id: str, clip_id: str, annotator: str, label: str) -> None:
    """Records the annotator's label for a clip they were given; the same answer twice is a no-op."""
    if label not in ANSWERS:
        raise InvalidRequest("label", f"one of {', '.join(ANSWERS)}, not {label[:40]!r}")
    in_release(session, release_id, clip_id)
    row = session.get(db.Annotation, (release_id, clip_id, annotator))
    if row is None:
        raise NotYours(f"clip {clip_id!r} was not given to {annotator!r}")
    if row.label is not None and row.label != label:
        raise AlreadyAnswered(f"{annotator!r} already labelled clip {clip_id!r} {row.label!r}")
    if row.label is None:
        row.label, row.answered_at = label, datetime.now(UTC)
    session.commit()


def labels_of(session: Session, release_id: str) -> dict[str, dict[str, str]]:
    """{clip id: {annotator: label}} over the release's answered clips (`unsure` left out)."""
    a = db.Annotation
    found: dict[str, dict[str, str]] = {}
    rows = session.execute(
        select(a.clip_id, a.annotator, a.label).where(a.release_id == release_id, a.label.in_(CANONICAL))
    )
    for clip_id, annotator, label in rows:
        found.setdefault(clip_id, {})[annotator] = label
    return found


def progress(session: Session, release_id: str, annotator: str) -> tuple[int, int]:
    """(clips this annotator answered, clips in the release)."""
    a = db.Annotation
    done = session.scalar(
        select(func.count()).where(a.release_id == release_id, a.annotator == annotator, a.label.is_not(None))
    )
    total = session.scalar(select(func.count()).where(db.ReleaseClip.release_id == release_id))
    return int(done or 0), int(total or 0)


def releases(session: Session) -> Sequence[db.Release]:
    return session.scalars(select(db.Release).order_by(db.Release.created_at.desc())).all()
