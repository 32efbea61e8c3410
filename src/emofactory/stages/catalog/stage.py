"""The catalog stage: a labelled video -> its kept clips cut and stored, every segment's row in the
database (`storage.catalog_video`); beside it the catalog's own API (ListClips, GetClip, GetStats,
CreateRelease, the review's RPCs in `server`) and, where catalog.review_port is set, the review page."""

from __future__ import annotations

import asyncio
from pathlib import Path

from emofactory.core.events import SEGMENTS_LABELED
from emofactory.core.stage import Output, Stage
from emofactory.review.web import ReviewApp, serve_in_thread
from emofactory.stages.catalog import server
from emofactory.stages.catalog.config import CatalogConfig
from emofactory.stages.catalog.storage import catalog_video
from emofactory.v1 import events_pb2


class CatalogStage(Stage):
    name = "catalog"
    consumes = {SEGMENTS_LABELED: events_pb2.SegmentsLabeled}
    config_type = CatalogConfig

    def register_services(self, grpc_server, rt) -> list[str]:
        names = server.register(grpc_server, self.ctx, self.defaults)
        if self.defaults.review_port:
            app = ReviewApp(self.defaults, self.ctx.store, Path(rt.work_dir) / "review-media")
            serve_in_thread(app.app, rt.server.host, self.defaults.review_port)
        return names

    async def on_event(self, subject: str, event: events_pb2.SegmentsLabeled, config: CatalogConfig) -> Output:
        clips, out_of_sync = await asyncio.to_thread(catalog_video, self.ctx, event, config)
        return Output(items=clips, flagged=out_of_sync)
