"""The review served beside the catalog: its RPCs (AddAnnotator, GetReview, CreateValidatedRelease)
on the catalog's gRPC service and, where catalog.review_port is set, the review page. A feature built
on the catalog stage: the serving process runs `ReviewedCatalog` in the catalog's place."""

from __future__ import annotations

import asyncio
from pathlib import Path

from google.protobuf.json_format import ParseDict

from emofactory.core.service import grpc_errors
from emofactory.core.store import key_part
from emofactory.review.assignments import add_annotator
from emofactory.review.results import release_review
from emofactory.review.validated import create_validated_release
from emofactory.review.web import ReviewApp, serve_in_thread
from emofactory.stages.catalog import server
from emofactory.stages.catalog.stage import CatalogStage
from emofactory.v1 import catalog_pb2


class ReviewServicer(server.CatalogServicer):
    """The catalog's RPCs and the review's."""

    @grpc_errors
    async def AddAnnotator(self, request, context):
        def run():
            with self._session() as session:
                token = add_annotator(session, request.name, request.lead)
            return catalog_pb2.AddAnnotatorResponse(name=request.name, token=token)

        return await asyncio.to_thread(run)

    @grpc_errors
    async def GetReview(self, request, context):
        key_part(request.release, "release")

        def run():
            with self._session() as session:
                review = release_review(session, request.release, self.config.review_annotators)
            return ParseDict(review_message(review), catalog_pb2.GetReviewResponse())

        return await asyncio.to_thread(run)

    @grpc_errors
    async def CreateValidatedRelease(self, request, context):
        release = await asyncio.to_thread(self._publish, create_validated_release, request)
        return catalog_pb2.CreateValidatedReleaseResponse(release=release)


def review_message(review: dict) -> dict:
    """release_review's figures as GetReviewResponse's fields (None: absent)."""
    fields = catalog_pb2.GetReviewResponse.DESCRIPTOR.fields_by_name
    message = {k: v for k, v in review.items() if k in fields and v is not None}
    message["kappa_per_class"] = {c: k for c, k in review["kappa_per_class"].items() if k is not None}
    message["by_confidence"] = [{k: v for k, v in b.items() if v is not None} for b in review["by_confidence"]]
    message["reviewed"] = [{**c, "majority": c["majority"] or ""} for c in review["reviewed"]]
    message["by_annotator"] = {
        a: {k: v for k, v in row.items() if v is not None} for a, row in review["by_annotator"].items()
    }
    return message


class ReviewedCatalog(CatalogStage):
    """The catalog stage as served: its work unchanged, its gRPC API with the review's RPCs, and the
    review page beside it."""

    def register_services(self, grpc_server, rt) -> list[str]:
        names = server.register(grpc_server, self.ctx, self.defaults, ReviewServicer)
        if self.defaults.review_port:
            app = ReviewApp(self.defaults, self.ctx.store, Path(rt.work_dir) / "review-media")
            serve_in_thread(app.app, rt.server.host, self.defaults.review_port)
        return names
