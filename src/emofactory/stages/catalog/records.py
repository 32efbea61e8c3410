"""Between messages and rows: a labelled video becomes one Video row and one Clip row per
segment; a Clip row becomes the Clip message that ListClips and GetClip return."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.json_format import MessageToDict

from emofactory.core.emotions import CANONICAL, emotion_name, emotion_value
from emofactory.stages.catalog import db
from emofactory.v1 import catalog_pb2, common_pb2, events_pb2


def group_of(info: dict, video_id: str, fields) -> str:
    """The source group releases split by: the first info-JSON field found (series, playlist), else the video."""
    for name in fields:
        value = info.get(name)
        if value:
            return f"{name}:{value}"
    return f"video:{video_id}"


def video_row(event: events_pb2.SegmentsLabeled, info: dict, group_fields) -> db.Video:
    """The video's row from the info JSON that ingest stored: its source as given, title, duration,
    ingest time and source group."""
    ingested_at = info.get("ingested_at")
    return db.Video(
        video_id=event.envelope.video_id,
        source=info.get("source") or info.get("webpage_url") or info.get("original_url") or "",
        title=info.get("title") or "",
        language=event.envelope.context.language,
        group_key=group_of(info, event.envelope.video_id, group_fields),
        duration_s=float(info.get("source_duration_s") or info.get("duration") or 0.0),
        ingested_at=datetime.fromisoformat(ingested_at) if ingested_at else None,
        info={k: info[k] for k in ("id", "title", "series", "playlist_id", "channel", "duration") if k in info},
    )


def _utc(stamp: datetime) -> datetime:
    """SQLite keeps no time zone: the stored times are UTC."""
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def source_fields(video: db.Video) -> dict:
    """Where a clip came from, as every clip record and export carries it."""
    return {
        "source": video.source,
        "source_title": video.title,
        "source_duration_s": round(video.duration_s, 3),
        "ingested_at": _utc(video.ingested_at).isoformat() if video.ingested_at else "",
    }


def _dict(message) -> dict:
    return MessageToDict(message, preserving_proto_field_name=True)


def clip_id(job_id: str, segment_id: str) -> str:
    """A job's clip of a segment. Segment ids end in a fixed shape (`v<16 hex>-<ms>-<ms>`), so the
    pair is unambiguous; no '.', which WebDataset would take for an extension."""
    return f"{job_id}_{segment_id}" if job_id else segment_id


def clip_rows(event: events_pb2.SegmentsLabeled) -> list[db.Clip]:
    """Rows without media keys; the caller adds the keys of the clips it cut."""
    vision = {v.segment_id: v for v in event.vision}
    texts = {t.segment_id: t for t in event.transcripts}
    labels = {x.segment_id: x for x in event.labels}
    rows = []
    for segment in event.segments:
        v, t, x = vision.get(segment.segment_id), texts.get(segment.segment_id), labels.get(segment.segment_id)
        job_id = event.envelope.context.job_id
        row = db.Clip(
            clip_id=clip_id(job_id, segment.segment_id),
            segment_id=segment.segment_id,
            video_id=event.envelope.video_id,
            job_id=job_id,
            start_s=segment.start_s,
            end_s=segment.end_s,
            language=event.envelope.context.language,
            flags=[],
        )
        if v is not None:
            row.frame_key, row.faces_key = v.frame.key, v.faces.key
            row.face_ratio = v.face_ratio
            row.active_face = _dict(v.active_face) if v.HasField("active_face") else {}
            row.face_scores = _dict(v.face) if v.HasField("face") else {}
            row.flags += [f"vision:{f}" for f in v.flags]
        if t is not None:
            row.transcript, row.transcript_failed = t.text, t.failed
            row.words = [_dict(w) for w in t.words]
            if t.failed:
                row.flags.append(f"asr:{t.failure_reason}")
        if x is not None:
            row.audio_scores = _dict(x.audio) if x.HasField("audio") else {}
            row.text_scores = _dict(x.text) if x.HasField("text") else {}
            row.fused_scores = list(x.fused_scores)
            row.label = emotion_name(x.label.emotion)
            row.confidence, row.kept, row.reasons = x.label.confidence, x.label.kept, list(x.label.reasons)
            row.fusion_score, row.reason_codes = x.label.fusion_score, list(x.label.reason_codes)
            row.provenance = _dict(x.provenance)
        rows.append(row)
    return rows


def _scores(data: dict) -> common_pb2.EmotionScores | None:
    return common_pb2.EmotionScores(**{k: v for k, v in data.items() if k in (*CANONICAL, "model")}) if data else None


def to_message(row: db.Clip, bucket: str, video: db.Video, split: str = "") -> catalog_pb2.Clip:
    clip = catalog_pb2.Clip(
        **source_fields(video),
        clip_id=row.clip_id,
        video_id=row.video_id,
        job_id=row.job_id,
        segment=common_pb2.Segment(segment_id=row.segment_id or row.clip_id, start_s=row.start_s, end_s=row.end_s),
        transcript=row.transcript,
        transcript_failed=row.transcript_failed,
        face_ratio=row.face_ratio,
        language=row.language,
        sync_ok=row.sync_ok,
        flags=row.flags,
        split=split,
        group=video.group_key,
    )
    for field, key, kind in (
        ("video", row.mp4_key, "video/mp4"),
        ("audio", row.wav_key, "audio/wav"),
        ("frame", row.frame_key, "image/jpeg"),
        ("faces", row.faces_key, "image/jpeg"),
    ):
        if key:
            getattr(clip, field).CopyFrom(common_pb2.ObjectRef(bucket=bucket, key=key, content_type=kind))
    if row.active_face:
        clip.active_face.CopyFrom(common_pb2.FaceBox(**row.active_face))
    for field, data in (("face", row.face_scores), ("audio_scores", row.audio_scores), ("text", row.text_scores)):
        scores = _scores(data)
        if scores is not None:
            getattr(clip, field).CopyFrom(scores)
    if row.label:
        clip.label.CopyFrom(
            common_pb2.Label(
                emotion=emotion_value(row.label),
                confidence=row.confidence,
                fusion_score=row.fusion_score,
                strategy=row.provenance.get("strategy", ""),
                kept=row.kept,
                reasons=row.reasons,
                reason_codes=row.reason_codes,
            )
        )
    return clip
