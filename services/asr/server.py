"""gRPC AsrService: Transcribe the segments of a stored 16 kHz mono WAV."""

from __future__ import annotations

import dataclasses

from services.asr.config import AsrConfig, checked_options
from services.asr.storage import transcribe_stored_audio
from services.common.backend import backend_for
from services.common.config import ModelsConfig, load_section
from services.common.errors import InvalidRequest
from services.common.gen.emofactory.v1 import asr_pb2, asr_pb2_grpc
from services.common.media import check_segments
from services.common.service import Runtime, grpc_errors
from services.common.store import check_key, key_part


class AsrServicer(asr_pb2_grpc.AsrServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.defaults = load_section(AsrConfig, "asr")
        self.backend = backend_for(load_section(ModelsConfig, "models"))

    @grpc_errors
    async def Transcribe(self, request, context):
        if not request.audio.key:
            raise InvalidRequest("audio.key", "required: the stored WAV to transcribe")
        check_key(request.audio.key, "audio.key")
        key_part(request.video_id, "video_id")
        check_segments(request.segments)
        options = request.options if request.HasField("options") else None
        config = checked_options(self.defaults, options)
        config = dataclasses.replace(config, language=request.language or config.language)
        transcripts, doc = await transcribe_stored_audio(
            self.rt, self.backend, request.audio, request.video_id, request.segments, config
        )
        return asr_pb2.TranscribeResponse(transcripts=transcripts, transcripts_doc=doc)


def register(server, rt: Runtime) -> list[str]:
    asr_pb2_grpc.add_AsrServiceServicer_to_server(AsrServicer(rt), server)
    return [asr_pb2.DESCRIPTOR.services_by_name["AsrService"].full_name]
