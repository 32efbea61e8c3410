"""The ingest stage: emo.ingest.submitted -> one emo.ingest.discovered per video the sources stand
for; emo.ingest.discovered -> the video and its info JSON in the store -> emo.ingest.downloaded.
Beside it the job API (SubmitJob, GetJob in `server`)."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

from emofactory.core.errors import PermanentError, TransientError
from emofactory.core.events import JOB_SUBMITTED, VIDEO_DISCOVERED, VIDEO_DOWNLOADED
from emofactory.core.media import probe
from emofactory.core.stage import Output, Stage
from emofactory.core.store import object_key, parse_s3_uri
from emofactory.stages.ingest import server, sources
from emofactory.stages.ingest.config import IngestConfig
from emofactory.stages.ingest.egress import EgressProxy, Policy
from emofactory.v1 import common_pb2, events_pb2

log = logging.getLogger(__name__)


def _single(kind: str, value: str) -> common_pb2.Source:
    return common_pb2.Source(**{kind: value})


@contextmanager
def egress(config: IngestConfig):
    """yt-dlp's way out (the egress proxy's URL). Where the proxy refused a destination, the failure is
    that refusal, permanent, whatever yt-dlp made of the 403 it got instead."""
    with EgressProxy(Policy(config.allow_hosts), config.socket_timeout_s) as proxy:
        try:
            yield proxy.url
        except (PermanentError, TransientError) as exc:
            if proxy.refused:
                raise PermanentError(f"refused to fetch {proxy.refused[0]}") from exc
            raise


def discover(source: common_pb2.Source, config: IngestConfig, store) -> list[tuple[str, common_pb2.Source, str]]:
    """(video_id, single-video source, title) for each video a source stands for."""
    kind = source.WhichOneof("kind")
    if kind == "path":
        path = sources.check_local_path(source.path, config.local_roots)
        return [(sources.video_id("file:" + sources.file_digest(path)), source, path.stem)]
    if kind == "s3_uri":
        bucket, key = parse_s3_uri(source.s3_uri)
        etag = store.etag(common_pb2.ObjectRef(bucket=bucket, key=key))
        return [(sources.video_id(f"s3:{bucket}/{key}@{etag}"), source, Path(key).stem)]
    if kind == "url":
        targets = [sources.check_url(source.url, config.allow_hosts)]
    elif kind == "search":
        targets = sources.search_targets(source.search, config)
    else:
        raise PermanentError("a source names no url, search, path or s3_uri")
    from emofactory.stages.ingest import ytdlp  # yt-dlp is in ingest's image alone (deploy/docker/services.py)

    found = []
    with egress(config) as proxy:
        for target in targets:
            for entry in ytdlp.resolve(target, config, proxy, config.max_items):
                found.append((sources.video_id(entry.identity), _single("url", entry.url), entry.title))
    return found


def fetch(source: common_pb2.Source, config: IngestConfig, store, tmp: Path) -> tuple[Path, dict]:
    """The video file and its info dict, from wherever the source points."""
    kind = source.WhichOneof("kind")
    if kind == "url":
        from emofactory.stages.ingest import ytdlp

        sources.check_url(source.url, config.allow_hosts)
        with egress(config) as proxy:
            return ytdlp.download(source.url, tmp, config, proxy)
    if kind == "path":
        path = sources.check_local_path(source.path, config.local_roots)
        return path, {"title": path.stem, "source": str(path)}
    bucket, key = parse_s3_uri(source.s3_uri)
    target = store.get_file(common_pb2.ObjectRef(bucket=bucket, key=key), tmp / "source")
    return target, {"title": Path(key).stem, "source": source.s3_uri}


def provenance(event: events_pb2.VideoDiscovered, media: common_pb2.MediaInfo) -> dict:
    """What every clip of the video records of where it came from: the source as given (URL, local
    path or s3:// URI), its title and duration, and when its job was submitted (deterministic, so a
    redelivery writes the same info JSON)."""
    context = event.envelope.context
    submitted = context.submitted_at
    return {
        "source": sources.describe(event.source),
        "source_duration_s": round(media.duration_s, 3),
        "ingested_at": submitted.ToJsonString() if context.HasField("submitted_at") else "",
    }


class IngestStage(Stage):
    name = "ingest"
    consumes = {JOB_SUBMITTED: events_pb2.JobSubmitted, VIDEO_DISCOVERED: events_pb2.VideoDiscovered}
    produces = (VIDEO_DISCOVERED, VIDEO_DOWNLOADED)
    config_type = IngestConfig
    check = staticmethod(sources.checked_config)

    def register_services(self, grpc_server, rt) -> list[str]:
        return server.register(grpc_server, rt, self.defaults)

    async def on_event(self, subject: str, event, config: IngestConfig) -> Output:
        if subject == JOB_SUBMITTED:
            return await self.resolve(event, config)
        if subject == VIDEO_DISCOVERED:
            return await self.download(event, config)
        raise PermanentError(f"ingest does not handle {subject}")

    async def resolve(self, event: events_pb2.JobSubmitted, config: IngestConfig) -> Output:
        """Every video the job's sources stand for (each once, at most max_items); a bad source is an
        error of the job and does not sink the others."""
        out, seen = Output(resolved=True), set()
        for i, source in enumerate(event.sources):
            try:
                found = await asyncio.to_thread(discover, source, config, self.ctx.store)
            except PermanentError as exc:
                out.errors.append(f"sources[{i}] ({sources.describe(source)}): {exc}")
                continue
            for video_id, single, title in found:
                if video_id in seen or (config.max_items and len(seen) >= config.max_items):
                    continue
                seen.add(video_id)
                out.videos.append((video_id, sources.describe(single), title))
                envelope = events_pb2.Envelope(context=event.context, video_id=video_id)
                discovered = events_pb2.VideoDiscovered(envelope=envelope, source=single)
                out.events.append((VIDEO_DISCOVERED, discovered))
        log.info("job resolved", extra={"job_id": event.context.job_id, "videos": len(seen), "errors": out.errors})
        return out

    async def download(self, event: events_pb2.VideoDiscovered, config: IngestConfig) -> Output:
        store, video_id = self.ctx.store, event.envelope.video_id
        with tempfile.TemporaryDirectory(dir=self.ctx.work_dir) as tmp:
            path, info = await asyncio.to_thread(fetch, event.source, config, store, Path(tmp))
            media = await asyncio.to_thread(probe, path)
            if not media.has_video and not media.has_audio:
                raise PermanentError("the file holds neither video nor audio")
            reason = sources.filter_reason(media.duration_s, info.get("language") or "", config)
            if reason:
                return Output(state=common_pb2.STAGE_STATE_SKIPPED, reason=reason)
            info |= provenance(event, media)
            info_doc = json.dumps(info, sort_keys=True, default=str).encode()
            info_key = object_key(video_id, "ingest", "info.json")
            info_ref = await asyncio.to_thread(store.put_bytes, info_key, info_doc, "application/json")
            video_key = object_key(video_id, "ingest", "source.mp4")
            video_ref = await asyncio.to_thread(store.put_file, video_key, path, "video/mp4")
        envelope = events_pb2.Envelope(
            context=event.envelope.context, video_id=video_id, video=video_ref, info=info_ref
        )
        out = events_pb2.VideoDownloaded(
            envelope=envelope,
            media=media,
            title=info.get("title") or "",
            source=sources.describe(event.source),
        )
        return Output([(VIDEO_DOWNLOADED, out)], items=1)
