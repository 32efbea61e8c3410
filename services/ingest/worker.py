"""emo.ingest.submitted -> one emo.ingest.discovered per video; emo.ingest.discovered -> the video
and its info JSON in the store -> emo.ingest.downloaded."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from pathlib import Path

from services.common.bus import publish
from services.common.config import load_section
from services.common.errors import PermanentError
from services.common.events import JOB_SUBMITTED, VIDEO_DISCOVERED, VIDEO_DOWNLOADED, message_id
from services.common.gen.emofactory.v1 import common_pb2, events_pb2
from services.common.media import probe
from services.common.service import Runtime
from services.common.store import object_key, parse_s3_uri
from services.ingest import sources, stage
from services.ingest.config import IngestConfig

log = logging.getLogger(__name__)


def _single(kind: str, value: str) -> common_pb2.Source:
    return common_pb2.Source(**{kind: value})


def discover(source: common_pb2.Source, config: IngestConfig, rt: Runtime) -> list[tuple[str, common_pb2.Source, str]]:
    """(video_id, single-video source, title) for each video a source stands for."""
    kind = source.WhichOneof("kind")
    if kind == "path":
        path = sources.check_local_path(source.path, config.local_roots)
        return [(sources.video_id("file:" + sources.file_digest(path)), source, path.stem)]
    if kind == "s3_uri":
        bucket, key = parse_s3_uri(source.s3_uri)
        etag = rt.store.etag(common_pb2.ObjectRef(bucket=bucket, key=key))
        return [(sources.video_id(f"s3:{bucket}/{key}@{etag}"), source, Path(key).stem)]
    if kind == "url":
        targets = [sources.check_url(source.url, config.allow_hosts)]
    elif kind == "search":
        targets = sources.search_targets(source.search, config)
    else:
        raise PermanentError("a source names no url, search, path or s3_uri")
    found = []
    for target in targets:
        for entry in stage.resolve(target, config, config.max_items):
            found.append((sources.video_id(entry.identity), _single("url", entry.url), entry.title))
    return found


def fetch(source: common_pb2.Source, config: IngestConfig, rt: Runtime, tmp: Path) -> tuple[Path, dict]:
    """The video file and its info dict, from wherever the source points."""
    kind = source.WhichOneof("kind")
    if kind == "url":
        sources.check_url(source.url, config.allow_hosts)
        return stage.download(source.url, tmp, config)
    if kind == "path":
        path = sources.check_local_path(source.path, config.local_roots)
        return path, {"title": path.stem, "source": str(path)}
    bucket, key = parse_s3_uri(source.s3_uri)
    target = rt.store.get_file(common_pb2.ObjectRef(bucket=bucket, key=key), tmp / "source")
    return target, {"title": Path(key).stem, "source": source.s3_uri}


def provenance(event: events_pb2.VideoDiscovered, media: common_pb2.MediaInfo) -> dict:
    """What every clip of the video records of where it came from: the source as given (URL, local
    path or s3:// URI), its title and duration, and when its job was submitted (deterministic, so a
    redelivery writes the same info JSON)."""
    return {
        "source": sources.describe(event.source),
        "source_duration_s": round(media.duration_s, 3),
        "ingested_at": event.context.submitted_at.ToJsonString() if event.context.HasField("submitted_at") else "",
    }


def make_handler(rt: Runtime):
    defaults = load_section(IngestConfig, "ingest")

    def job_config(ctx: common_pb2.JobContext) -> IngestConfig:
        return sources.checked_config(defaults, ctx.config.ingest if ctx.config.HasField("ingest") else None)

    async def on_submitted(event: events_pb2.JobSubmitted) -> None:
        ctx, config = event.context, job_config(event.context)
        errors, seen = [], set()
        for i, source in enumerate(event.sources):
            try:
                found = await asyncio.to_thread(discover, source, config, rt)
            except PermanentError as exc:  # one bad source does not sink the others
                errors.append(f"sources[{i}] ({sources.describe(source)}): {exc}")
                continue
            for video_id, single, title in found:
                if video_id in seen or (config.max_items and len(seen) >= config.max_items):
                    continue
                seen.add(video_id)
                await rt.jobs.add_video(ctx.job_id, video_id, sources.describe(single), title)
                discovered = events_pb2.VideoDiscovered(context=ctx, video_id=video_id, source=single)
                await publish(
                    rt.js, VIDEO_DISCOVERED, discovered, message_id(ctx.job_id, video_id, "ingest.discovered")
                )

        def settle(job: common_pb2.Job) -> None:
            job.errors[:] = errors
            job.resolved = True

        await rt.jobs.update(ctx.job_id, settle)
        log.info("job resolved", extra={"job_id": ctx.job_id, "videos": len(seen), "errors": errors})

    async def on_discovered(event: events_pb2.VideoDiscovered) -> None:
        ctx, config, video_id = event.context, job_config(event.context), event.video_id
        video_key = object_key(video_id, "ingest", "source.mp4")
        info_key = object_key(video_id, "ingest", "info.json")
        with tempfile.TemporaryDirectory(dir=rt.work_dir) as tmp:
            path, info = await asyncio.to_thread(fetch, event.source, config, rt, Path(tmp))
            media = await asyncio.to_thread(probe, path)
            if not media.has_video and not media.has_audio:
                raise PermanentError("the file holds neither video nor audio")
            reason = sources.filter_reason(media.duration_s, info.get("language") or "", config)
            if reason:
                await rt.jobs.record(ctx.job_id, video_id, "ingest", common_pb2.STAGE_STATE_SKIPPED, reason)
                return
            info |= provenance(event, media)
            info_doc = json.dumps(info, sort_keys=True, default=str).encode()
            info_ref = await asyncio.to_thread(rt.store.put_bytes, info_key, info_doc, "application/json")
            video_ref = await asyncio.to_thread(rt.store.put_file, video_key, path, "video/mp4")
        out = events_pb2.VideoDownloaded(
            context=ctx,
            video_id=video_id,
            video=video_ref,
            info=info_ref,
            media=media,
            title=info.get("title") or "",
            source=sources.describe(event.source),
        )
        await publish(rt.js, VIDEO_DOWNLOADED, out, message_id(ctx.job_id, video_id, "ingest.downloaded"))
        await rt.jobs.record(ctx.job_id, video_id, "ingest", common_pb2.STAGE_STATE_DONE, items=1)

    async def handle(subject: str, event) -> None:
        if subject == JOB_SUBMITTED:
            await on_submitted(event)
        elif subject == VIDEO_DISCOVERED:
            await on_discovered(event)
        else:
            raise PermanentError(f"ingest does not handle {subject}")

    return handle
