"""The catalog stage: a labelled video -> its kept clips cut and stored, every segment's row in the
database (`storage.catalog_video`); beside it the catalog's own API (ListClips, GetClip, GetStats,
CreateRelease, in `server`). The review (its RPCs, its page) is built on this, in `emofactory.review`."""

from __future__ import annotations

import asyncio

from emofactory.core.events import SEGMENTS_LABELED
from emofactory.core.stage import Output, Stage
from emofactory.stages.catalog.config import CatalogConfig, checked_options
from emofactory.v1 import events_pb2


class CatalogStage(Stage):
    name = "catalog"
    consumes = {SEGMENTS_LABELED: events_pb2.SegmentsLabeled}
    config_type = CatalogConfig
    check = staticmethod(checked_options)

    # The clips' and releases' code (PyAV, Arrow, matplotlib) is imported where it runs: every service
    # imports the stages' classes, and only the catalog's image holds those (deploy/docker/services.py).
    def register_services(self, grpc_server, rt) -> list[str]:
        from emofactory.stages.catalog import server

        return server.register(grpc_server, self.ctx, self.defaults)

    async def on_event(self, subject: str, event: events_pb2.SegmentsLabeled, config: CatalogConfig) -> Output:
        from emofactory.stages.catalog.storage import catalog_video

        clips, out_of_sync = await asyncio.to_thread(catalog_video, self.ctx, event, config)
        return Output(items=clips, flagged=out_of_sync)
