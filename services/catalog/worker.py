"""emo.labeler.labeled -> clips cut and stored, rows in the catalog database."""

from __future__ import annotations

from services.catalog.config import CatalogConfig
from services.catalog.storage import catalog_event
from services.common.config import load_section
from services.common.gen.emofactory.v1 import common_pb2, events_pb2
from services.common.service import Runtime


def make_handler(rt: Runtime):
    config = load_section(CatalogConfig, "catalog")

    async def handle(subject: str, event: events_pb2.SegmentsLabeled) -> None:
        clips, out_of_sync = await catalog_event(rt, event, config)
        await rt.jobs.record(
            event.context.job_id,
            event.video_id,
            "catalog",
            common_pb2.STAGE_STATE_DONE,
            items=clips,
            flagged=out_of_sync,
        )

    return handle
