"""gRPC CatalogService: ListClips, GetClip, GetStats over the metadata database; CreateRelease
selects, balances and splits clips and writes the release (media, manifest, exports, report) to
the object store under releases/<release_id>/. The human review's RPCs (AddAnnotator, GetReview,
CreateValidatedRelease) are the review's own (`emofactory.review.service`), mounted beside these
where the catalog is served; without it they answer UNIMPLEMENTED."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from emofactory.core.errors import InvalidRequest, NotFound
from emofactory.core.service import grpc_errors
from emofactory.core.stage import StageContext
from emofactory.core.store import key_part
from emofactory.stages.catalog import db
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.catalog.publish import create_release, upload_release
from emofactory.stages.catalog.queries import MAX_ID, list_page, stats
from emofactory.stages.catalog.records import to_message
from emofactory.v1 import catalog_pb2, catalog_pb2_grpc


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, ctx: StageContext, config: CatalogConfig):
        self.ctx = ctx
        self.config = config

    def _session(self):
        return db.sessions(self.config.database_url)()

    @grpc_errors
    async def ListClips(self, request, context):
        def run():
            with self._session() as session:
                rows, token = list_page(session, request)
                clips = [to_message(c, self.ctx.store.bucket, v, s or "") for c, v, s in rows]
                return catalog_pb2.ListClipsResponse(clips=clips, next_page_token=token)

        return await asyncio.to_thread(run)

    @grpc_errors
    async def GetClip(self, request, context):
        key_part(request.clip_id, "clip_id")

        def run():
            with self._session() as session:
                clip = session.get(db.Clip, request.clip_id)
                if clip is None:
                    raise NotFound(f"no clip {request.clip_id!r}")
                video = session.get(db.Video, clip.video_id)
                return catalog_pb2.GetClipResponse(clip=to_message(clip, self.ctx.store.bucket, video))

        return await asyncio.to_thread(run)

    @grpc_errors
    async def GetStats(self, request, context):
        if len(request.language) > MAX_ID or "\0" in request.language:
            raise InvalidRequest("language", f"at most {MAX_ID} characters, no NUL")
        if request.release:
            key_part(request.release, "release")

        def run():
            with self._session() as session:
                if request.release and session.get(db.Release, request.release) is None:
                    raise NotFound(f"no release {request.release!r}")
                return stats(session, request.language, request.release)

        return await asyncio.to_thread(run)

    @grpc_errors
    async def CreateRelease(self, request, context):
        if request.filter.split or request.filter.release:
            raise InvalidRequest("filter", "a release is made from the catalog, not from another release's split")
        return await asyncio.to_thread(self._publish, create_release, request)

    def _publish(self, create, request) -> catalog_pb2.CreateReleaseResponse:
        with tempfile.TemporaryDirectory(dir=self.ctx.work_dir or None) as tmp:
            release = create(self.ctx.store, self.config, request, Path(tmp))
            keys = upload_release(self.ctx.store, release)
        response = catalog_pb2.CreateReleaseResponse(
            release_id=release.release_id,
            manifest=self.ctx.store.ref(keys["manifest.json"], "application/json"),
            clips=len(release.records),
            report=self.ctx.store.ref(keys["report/report.html"], "text/html"),
            not_kept=release.not_kept,
        )
        for record in release.records:
            response.splits[record["split"]] = response.splits[record["split"]] + 1
        for name, paths in release.exports.items():
            first = paths[0].relative_to(release.root).as_posix() if paths else ""
            if first:
                response.exports[name].CopyFrom(self.ctx.store.ref(keys[first]))
        return response


def register(server, ctx: StageContext, config: CatalogConfig, servicer: type = CatalogServicer) -> list[str]:
    """`servicer`: CatalogServicer, or a feature's subclass adding its RPCs (the review's)."""
    db.engine_for(config.database_url)  # migrate before serving
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer(ctx, config), server)
    return [catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name]
