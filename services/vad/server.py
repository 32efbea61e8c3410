"""gRPC VadService: DetectSegments on a stored 16 kHz mono WAV."""

from __future__ import annotations

from services.common.config import load_section
from services.common.errors import InvalidRequest
from services.common.gen.emofactory.v1 import vad_pb2, vad_pb2_grpc
from services.common.service import Runtime, grpc_errors
from services.common.store import check_key, key_part
from services.vad.config import VadConfig, checked_options
from services.vad.storage import segment_stored_audio


class VadServicer(vad_pb2_grpc.VadServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.defaults = load_section(VadConfig, "vad")

    @grpc_errors
    async def DetectSegments(self, request, context):
        if not request.audio.key:
            raise InvalidRequest("audio.key", "required: the stored WAV to segment")
        check_key(request.audio.key, "audio.key")
        key_part(request.video_id, "video_id")
        config = checked_options(self.defaults, request.options if request.HasField("options") else None)
        segments, doc, duration = await segment_stored_audio(self.rt, request.audio, request.video_id, config)
        return vad_pb2.DetectSegmentsResponse(
            segments=segments,
            segments_doc=doc,
            duration_s=duration,
            speech_s=sum(s.end_s - s.start_s for s in segments),
        )


def register(server, rt: Runtime) -> list[str]:
    vad_pb2_grpc.add_VadServiceServicer_to_server(VadServicer(rt), server)
    return [vad_pb2.DESCRIPTOR.services_by_name["VadService"].full_name]
