"""gRPC LabelerService: LabelSegments from given evidence (scores, face ratio, transcripts)."""

from __future__ import annotations

from services.common.backend import backend_for
from services.common.config import ModelsConfig, load_section
from services.common.errors import InvalidRequest
from services.common.gen.emofactory.v1 import labeler_pb2, labeler_pb2_grpc
from services.common.media import check_segments
from services.common.service import Runtime, grpc_errors
from services.common.store import check_key, key_part
from services.labeler.config import LabelerConfig, checked_options
from services.labeler.storage import label_stored_segments
from services.models.text_emotion import MODEL_NAMES


class LabelerServicer(labeler_pb2_grpc.LabelerServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.defaults = load_section(LabelerConfig, "labeler")
        models = load_section(ModelsConfig, "models")
        self.backend = backend_for(models)
        self.text_model = MODEL_NAMES.get(models.text_emotion_engine, models.text_emotion_engine)

    @grpc_errors
    async def LabelSegments(self, request, context):
        key_part(request.video_id, "video_id")
        if not request.segments:
            raise InvalidRequest("segments", "at least one segment is required")
        check_segments([e.segment for e in request.segments])
        for i, e in enumerate(request.segments):
            if not 0 <= e.face_ratio <= 1:
                raise InvalidRequest(f"segments[{i}].face_ratio", f"must be in [0, 1], not {e.face_ratio}")
        if request.audio.key:
            check_key(request.audio.key, "audio.key")
        config = checked_options(self.defaults, request.options if request.HasField("options") else None)
        labels, doc = await label_stored_segments(
            self.rt, self.backend, request.audio, request.video_id, request.segments, config, None, self.text_model
        )
        return labeler_pb2.LabelSegmentsResponse(labels=labels, labels_doc=doc)


def register(server, rt: Runtime) -> list[str]:
    labeler_pb2_grpc.add_LabelerServiceServicer_to_server(LabelerServicer(rt), server)
    return [labeler_pb2.DESCRIPTOR.services_by_name["LabelerService"].full_name]
