"""gRPC AudioService: ExtractAudio on a stored video."""

from __future__ import annotations

from services.audio.config import AudioConfig
from services.audio.storage import extract_stored_audio
from services.common.config import load_section
from services.common.errors import InvalidRequest
from services.common.gen.emofactory.v1 import audio_pb2, audio_pb2_grpc
from services.common.service import Runtime, grpc_errors
from services.common.store import check_key, key_part


class AudioServicer(audio_pb2_grpc.AudioServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.config = load_section(AudioConfig, "audio")

    @grpc_errors
    async def ExtractAudio(self, request, context):
        if not request.video.key:
            raise InvalidRequest("video.key", "required: the stored video to extract audio from")
        check_key(request.video.key, "video.key")
        key_part(request.video_id, "video_id")
        audio, media = await extract_stored_audio(self.rt, request.video, request.video_id, self.config)
        return audio_pb2.ExtractAudioResponse(audio=audio, media=media)


def register(server, rt: Runtime) -> list[str]:
    audio_pb2_grpc.add_AudioServiceServicer_to_server(AudioServicer(rt), server)
    return [audio_pb2.DESCRIPTOR.services_by_name["AudioService"].full_name]
