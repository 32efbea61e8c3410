"""Creating a release: select kept clips, balance classes, split by source group, record the
release, and write it out (media, manifest, exports, report) into a folder."""

from __future__ import annotations

import hashlib
import json
import math
import mimetypes
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from sqlalchemy import delete

from emofactory.core.errors import InvalidRequest
from emofactory.core.store import ObjectStore
from emofactory.stages.catalog import db
from emofactory.stages.catalog.config import CatalogConfig, check_clip_size
from emofactory.stages.catalog.encode import reencode
from emofactory.stages.catalog.exports import FORMATS, write_exports
from emofactory.stages.catalog.queries import check_filter, clip_query
from emofactory.stages.catalog.records import source_fields
from emofactory.stages.catalog.releases import SPLITS, Candidate, balance, split_release
from emofactory.stages.catalog.report import write_report
from emofactory.v1 import catalog_pb2

MAX_NEUTRAL_RATIO = 10.0  # neutral clips per non-neutral one, at most (0: no cap)
MAX_GROUPS = 100_000


@dataclass
class Release:
    release_id: str
    root: Path
    records: list[dict]
    exports: dict[str, list[Path]]
    report: Path
    not_kept: dict[str, int]


def release_params(request: catalog_pb2.CreateReleaseRequest, config: CatalogConfig) -> dict:
    check_filter(request.filter, "filter")
    ratios = list(request.split_ratios) or list(config.split_ratios)
    if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-3:
        raise InvalidRequest("split_ratios", f"three non-negative ratios summing to 1, not {ratios[:4]}")
    formats = list(request.formats) or list(FORMATS)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise InvalidRequest("formats", f"unknown {sorted(unknown)}; known: {', '.join(FORMATS)}")
    if not request.name.strip() or len(request.name) > 255 or "\0" in request.name:
        raise InvalidRequest("name", "required, at most 255 characters, no NUL")
    neutral = request.neutral_ratio if request.HasField("neutral_ratio") else config.neutral_ratio
    if not (math.isfinite(neutral) and 0 <= neutral <= MAX_NEUTRAL_RATIO):
        raise InvalidRequest("neutral_ratio", f"must be 0 (no cap) to {MAX_NEUTRAL_RATIO}, not {neutral}")
    if request.max_per_class < 0:
        raise InvalidRequest("max_per_class", f"must be 0 (no cap) or positive, not {request.max_per_class}")
    if len(request.groups) > MAX_GROUPS or any(len(k) > 160 or len(v) > 255 for k, v in request.groups.items()):
        raise InvalidRequest("groups", f"at most {MAX_GROUPS} video ids (160 characters) to groups (255)")
    check_clip_size(request.clip_max_height, request.clip_max_fps, "")
    smaller = {"max_height": request.clip_max_height, "max_fps": round(request.clip_max_fps, 6)}
    return {
        **({"clips": smaller} if any(smaller.values()) else {}),  # as cut: the release ids of before
        "name": request.name,
        "filter": MessageToDict(request.filter, preserving_proto_field_name=True),
        "neutral_ratio": round(float(neutral), 6),
        "split_ratios": [round(float(r), 6) for r in ratios],
        "seed": int(request.seed),
        "max_per_class": int(request.max_per_class),
        "groups": dict(sorted(request.groups.items())),
        "formats": sorted(formats),
    }


def release_id_of(params: dict) -> str:
    """The same request gives the same release (and replaces it)."""
    return "r" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:15]


def _record(clip: db.Clip, video: db.Video, split: str, group: str, media: dict[str, str]) -> dict:
    return {
        "clip_id": clip.clip_id,
        "video_id": clip.video_id,
        **source_fields(video),
        "group": group,
        "split": split,
        "start_s": round(clip.start_s, 3),
        "end_s": round(clip.end_s, 3),
        "language": clip.language,
        "transcript": clip.transcript,
        "transcript_failed": clip.transcript_failed,
        "words": clip.words,
        "label": clip.label,
        "confidence": clip.confidence,
        "fusion_score": clip.fusion_score,
        "reasons": clip.reasons,
        "reason_codes": clip.reason_codes,
        "face_ratio": clip.face_ratio,
        "active_face": clip.active_face,
        "scores": {"face": clip.face_scores, "audio": clip.audio_scores, "text": clip.text_scores},
        "fused_scores": clip.fused_scores,
        "provenance": clip.provenance,
        "sync_ok": clip.sync_ok,
        "flags": clip.flags,
        "media": media,
    }


def create_release(
    store: ObjectStore, config: CatalogConfig, request: catalog_pb2.CreateReleaseRequest, root: Path
) -> Release:
    params = release_params(request, config)
    release_id = release_id_of(params)
    filter_ = catalog_pb2.ListClipsRequest()
    filter_.CopyFrom(request.filter)
    filter_.include_rejected, filter_.release, filter_.split = False, "", ""
    Session = db.sessions(config.database_url)
    with Session() as session:
        rows = [(c, v) for c, v, _ in session.execute(clip_query(filter_)).all() if c.mp4_key]
        latest = {}  # one clip per segment where several jobs kept it: the latest job's decision
        for c, v in sorted(rows, key=lambda r: (r[0].created_at, r[0].clip_id)):
            latest[c.segment_id or c.clip_id] = (c, v)
        found = {c.clip_id: (c, v) for c, v in latest.values()}
        candidates = [
            Candidate(c.clip_id, c.label, c.confidence, request.groups.get(c.video_id, v.group_key), c.duration_s)
            for c, v in found.values()
        ]
        chosen = balance(candidates, params["neutral_ratio"], params["max_per_class"], params["seed"])
        splits = split_release(chosen, params["split_ratios"], params["seed"])
        members = [(*found[c.clip_id], split, c.group, {}) for split in SPLITS for c in splits[split]]
        released = {(c.segment_id or c.clip_id) for c, *_ in members}
        not_kept = left_out(session, filter_, released)
        return write_release(store, config, session, release_id, root, params, members, not_kept=not_kept)


def left_out(session, filter_: catalog_pb2.ListClipsRequest, released: set[str]) -> dict[str, int]:
    """The segments the filter matches that the release leaves out, by reason code: the labeler's
    (each filter a segment failed), `no_media` (kept, but its clip was not cut), `release_balance`
    (kept, left out by the class balance). So an empty or small release explains itself."""
    every = catalog_pb2.ListClipsRequest()
    every.CopyFrom(filter_)
    every.include_rejected = True
    latest = {}
    for c, _, _ in sorted(session.execute(clip_query(every)).all(), key=lambda r: (r[0].created_at, r[0].clip_id)):
        latest[c.segment_id or c.clip_id] = c
    counts: Counter[str] = Counter()
    for segment, clip in latest.items():
        if segment in released:
            continue
        if not clip.kept:
            counts.update(code for code in clip.reason_codes if code != "kept")
        else:
            counts["no_media" if not clip.mp4_key else "release_balance"] += 1
    return dict(sorted(counts.items()))


def write_release(
    store, config, session, release_id: str, root: Path, params: dict, members, review=None, not_kept=None
) -> Release:
    """Records the release and its members (clip, video, split, group, fields over the clip's record)
    in the database, then writes the folder: media, manifest, exports, report."""
    session.execute(delete(db.ReleaseClip).where(db.ReleaseClip.release_id == release_id))
    session.merge(db.Release(release_id=release_id, name=params["name"], params=params, manifest_key=""))
    session.flush()
    (root / "media").mkdir(parents=True, exist_ok=True)
    positions: dict[str, int] = dict.fromkeys(SPLITS, 0)
    records = []
    for clip, video, split, group, extra in members:
        session.add(db.ReleaseClip(release_id=release_id, clip_id=clip.clip_id, split=split, position=positions[split]))
        positions[split] += 1
        media = {}
        for ext, key in (("mp4", clip.mp4_key), ("wav", clip.wav_key), ("jpg", clip.frame_key)):
            if key:
                media[ext] = f"media/{clip.clip_id}.{ext}"
                store.get_file(store.ref(key), root / media[ext])
        if "mp4" in media and "clips" in params:
            reencode(root / media["mp4"], clip.end_s - clip.start_s, replace(config.encoding, **params["clips"]))
        records.append({**_record(clip, video, split, group, media), **extra})
    session.commit()
    manifest = {
        "release_id": release_id,
        **params,
        **({"review": {k: v for k, v in review.items() if k not in ("majority", "reviewed")}} if review else {}),
        "splits": positions,
        "not_kept": not_kept or {},
        "groups": {s: sorted({r["group"] for r in records if r["split"] == s}) for s in SPLITS},
        "clips": records,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True))
    exports = write_exports(records, root, params["formats"], config.shard_size)
    report = write_report(params["name"], records, root / "report", review, not_kept=not_kept)[0]
    return Release(release_id, root, records, exports, report, not_kept or {})


def upload_release(store: ObjectStore, release: Release) -> dict[str, str]:
    """Every file of the release folder under releases/<release_id>/; returns relative path -> key."""
    keys = {}
    for path in sorted(p for p in release.root.rglob("*") if p.is_file()):
        relative = path.relative_to(release.root).as_posix()
        key = f"releases/{release.release_id}/{relative}"
        store.put_file(key, path, mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        keys[relative] = key
    return keys
