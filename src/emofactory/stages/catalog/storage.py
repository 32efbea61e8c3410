"""Cataloging one labelled video: cut the kept segments' clips, store them, and write the video's
rows. Media keys are the segments' and row ids the job's and the segment's, so a redelivered event
rewrites the same objects and rows, and another job's rows stay as they were; a segment already cut
and in sync (by any job) is not cut again."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sqlalchemy import select

from emofactory.core.media import read_pcm
from emofactory.core.stage import StageContext
from emofactory.core.store import object_key
from emofactory.stages.catalog import db
from emofactory.stages.catalog.clips import ClipMedia, cut_clips
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.catalog.records import clip_rows, video_row
from emofactory.v1 import events_pb2


def _info(store, envelope) -> dict:
    """The info JSON ingest stored, as the envelope refers to it (none: a video labelled without ingest)."""
    return json.loads(store.get_bytes(envelope.info)) if envelope.info.key else {}


def _already_cut(session, store, segment_id: str) -> db.Clip | None:
    """A row of any job whose media of this segment are stored and in sync."""
    query = select(db.Clip).where(db.Clip.segment_id == segment_id, db.Clip.sync_ok, db.Clip.mp4_key != "")
    for row in session.scalars(query):
        if store.exists(row.mp4_key):
            return row
    return None


def store_clip(store, video_id: str, row: db.Clip, media: ClipMedia) -> None:
    """The clip's media under its segment's keys, noted on its row; the local files removed."""
    row.mp4_key = store.put_file(object_key(video_id, "catalog", f"{row.segment_id}.mp4"), media.mp4, "video/mp4").key
    row.wav_key = store.put_file(object_key(video_id, "catalog", f"{row.segment_id}.wav"), media.wav, "audio/wav").key
    row.sync_ok, row.audio_duration_s = media.sync_ok, media.audio_duration_s
    row.flags += media.flags
    media.mp4.unlink()
    media.wav.unlink()


def catalog_video(ctx: StageContext, event: events_pb2.SegmentsLabeled, config: CatalogConfig) -> tuple[int, int]:
    """Writes the rows of the video's segments (of the event's chunk) and the kept clips' media;
    returns (clips, clips out of sync)."""
    Session = db.sessions(config.database_url)
    store, envelope = ctx.store, event.envelope
    info = _info(store, envelope)
    rows = clip_rows(event)
    kept = [r for r in rows if r.kept]
    with Session() as session, tempfile.TemporaryDirectory(dir=ctx.work_dir or None) as tmp:
        done = {r.clip_id: _already_cut(session, store, r.segment_id) for r in kept}
        todo = [r for r in kept if done[r.clip_id] is None]
        if todo:
            copies = ctx.copies
            with copies.local_copy(envelope.video) as video, copies.local_copy(envelope.audio) as wav:
                pcm, rate = read_pcm(wav)
                segments = {s.segment_id: s for s in event.segments}
                rows_of = {r.segment_id: r for r in todo}
                for media in cut_clips(video, pcm, rate, [segments[s] for s in rows_of], Path(tmp), config):
                    store_clip(store, envelope.video_id, rows_of[media.segment_id], media)
        for row in kept:
            previous = done[row.clip_id]
            if previous is not None:
                row.mp4_key, row.wav_key = previous.mp4_key, previous.wav_key
                row.sync_ok, row.audio_duration_s = previous.sync_ok, previous.audio_duration_s
                row.flags += [f for f in previous.flags if not f.startswith(("vision:", "asr:"))]
        session.merge(video_row(event, info, config.group_fields))
        for row in rows:
            session.merge(row)
        session.commit()
    return len(kept), sum(not r.sync_ok for r in kept)
