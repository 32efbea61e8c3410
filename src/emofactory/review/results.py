"""A release's review as it stands: per clip the votes and the majority (clips with at least the
needed labels), Fleiss' kappa overall and per class, each annotator against the others, and the
factory's label against the people's, per class and by its confidence. The one source for the
results page, GetReview, the validated release and its report."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emofactory.review.agreement import by_annotator, by_confidence, summary
from emofactory.review.assignments import UNSURE, labels_of, release_or_404
from emofactory.stages.catalog import db


def release_review(session: Session, release_id: str, needed: int) -> dict:
    release = release_or_404(session, release_id)
    factory = {
        clip_id: (label, confidence)
        for clip_id, label, confidence in session.execute(
            select(db.Clip.clip_id, db.Clip.label, db.Clip.confidence)
            .join(db.ReleaseClip, db.ReleaseClip.clip_id == db.Clip.clip_id)
            .where(db.ReleaseClip.release_id == release_id)
        )
    }
    votes = labels_of(session, release_id)
    complete = {clip: by for clip, by in votes.items() if len(by) >= needed}
    result = summary(complete, {clip: label for clip, (label, _) in factory.items()})
    decided = [(m, *factory[c]) for c, m in result["majority"].items() if m is not None]
    annotators = session.scalar(
        select(func.count(func.distinct(db.Annotation.annotator))).where(
            db.Annotation.release_id == release_id, db.Annotation.label.is_not(None)
        )
    )
    result.setdefault("kappa", None)  # fewer than one clip with two labels
    result.setdefault("kappa_per_class", {})
    skipped = dict(
        session.execute(
            select(db.Annotation.annotator, func.count())
            .where(db.Annotation.release_id == release_id, db.Annotation.label == UNSURE)
            .group_by(db.Annotation.annotator)
        ).all()
    )
    people = by_annotator(complete)
    for name in set(skipped) - set(people):
        people[name] = {"labels": 0, "compared": 0, "agrees": None}
    result.update(
        by_annotator={name: {**row, "skipped": int(skipped.get(name, 0))} for name, row in sorted(people.items())},
        release_id=release_id,
        name=release.name,
        needed=needed,
        clips=len(factory),
        complete=len(complete),
        annotators=int(annotators or 0),
        by_confidence=by_confidence(decided),
        reviewed=[
            {
                "clip_id": clip,
                "votes": dict(Counter(by.values()).most_common()),
                "majority": result["majority"][clip],
                "factory_label": factory[clip][0],
                "confidence": factory[clip][1],
            }
            for clip, by in sorted(complete.items())
        ],
    )
    return result
