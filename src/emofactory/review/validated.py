"""A validated release (seed 003, App. C.1): a reviewed release's clips whose human majority is the
factory's label, or every clip with a majority labelled with it, written like any release."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.core.store import ObjectStore, key_part
from emofactory.review.assignments import release_or_404
from emofactory.review.results import release_review
from emofactory.stages.catalog import db
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.catalog.exports import FORMATS
from emofactory.stages.catalog.publish import Release, release_id_of, write_release
from emofactory.stages.catalog.releases import SPLITS
from emofactory.v1 import catalog_pb2


def create_validated_release(
    store: ObjectStore, config: CatalogConfig, request: catalog_pb2.CreateValidatedReleaseRequest, root: Path
) -> Release:
    """A reviewed release's clips whose human majority is the factory's label, or (use_human_label)
    every clip with a majority, labelled with it; each keeps its split, so no group leaks."""
    if len(request.name) > 255 or "\0" in request.name:
        raise InvalidRequest("name", "at most 255 characters, no NUL")
    with db.sessions(config.database_url)() as session:
        source = release_or_404(session, key_part(request.release, "release"))
        if "validated_from" in source.params:
            raise InvalidRequest("release", f"{source.release_id} is already a validated release")
        review = release_review(session, source.release_id, config.review_annotators)
        reviewed = {c["clip_id"]: c for c in review["reviewed"] if c["majority"]}
        if not reviewed:
            raise PermanentError(f"no clip of {source.release_id} has a majority of {review['needed']} labels yet")
        params = {
            "name": request.name or f"{source.name} (validated)",
            "validated_from": source.release_id,
            "use_human_label": request.use_human_label,
            "needed": review["needed"],
            "formats": source.params.get("formats", list(FORMATS)),
            "votes": {c: r["votes"] for c, r in sorted(reviewed.items())},  # new votes, new release
        }
        rows = session.execute(
            select(db.Clip, db.Video, db.ReleaseClip.split, db.ReleaseClip.position)
            .join(db.Video, db.Video.video_id == db.Clip.video_id)
            .join(db.ReleaseClip, db.ReleaseClip.clip_id == db.Clip.clip_id)
            .where(db.ReleaseClip.release_id == source.release_id)
        ).all()
        members = []
        for clip, video, split, _ in sorted(rows, key=lambda r: (SPLITS.index(r[2]), r[3])):
            human = reviewed.get(clip.clip_id)
            if human is None or not (request.use_human_label or human["majority"] == clip.label):
                continue
            extra = {"human_label": human["majority"], "human_votes": human["votes"]}
            if request.use_human_label:
                extra.update(label=human["majority"], factory_label=clip.label)
            group = source.params.get("groups", {}).get(video.video_id, video.group_key)
            members.append((clip, video, split, group, extra))
        return write_release(store, config, session, release_id_of(params), root, params, members, review)
