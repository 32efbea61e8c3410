"""gRPC VisionService: AnalyzeSegments on a stored video and its speech segments."""

from __future__ import annotations

from services.common.backend import backend_for
from services.common.config import ModelsConfig, load_section
from services.common.errors import InvalidRequest
from services.common.gen.emofactory.v1 import vision_pb2, vision_pb2_grpc
from services.common.media import check_segments
from services.common.service import Runtime, grpc_errors
from services.common.store import check_key, key_part
from services.vision.config import VisionConfig, checked_options
from services.vision.storage import analyze_stored_video


class VisionServicer(vision_pb2_grpc.VisionServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.defaults = load_section(VisionConfig, "vision")
        self.backend = backend_for(load_section(ModelsConfig, "models"))

    @grpc_errors
    async def AnalyzeSegments(self, request, context):
        if not request.video.key:
            raise InvalidRequest("video.key", "required: the stored video to analyse")
        check_key(request.video.key, "video.key")
        key_part(request.video_id, "video_id")
        check_segments(request.segments)
        config = checked_options(self.defaults, request.options if request.HasField("options") else None)
        vision, doc = await analyze_stored_video(
            self.rt, self.backend, request.video, request.video_id, request.segments, config
        )
        return vision_pb2.AnalyzeSegmentsResponse(segments=vision, vision_doc=doc)


def register(server, rt: Runtime) -> list[str]:
    vision_pb2_grpc.add_VisionServiceServicer_to_server(VisionServicer(rt), server)
    return [vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name]
