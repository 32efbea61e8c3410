"""The audio stage: a stored video -> its 16 kHz mono WAV (and the track at the source's own rate, for
the speech-emotion model), stored under fixed keys."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from emofactory.core.events import AUDIO_EXTRACTED, VIDEO_DOWNLOADED, forward
from emofactory.core.stage import Output, Rpc, Stage
from emofactory.core.store import check_ref, key_part, object_key
from emofactory.stages.audio.config import AudioConfig
from emofactory.stages.audio.extract import extract_audio, source_rate
from emofactory.v1 import audio_pb2, events_pb2


class AudioStage(Stage):
    name = "audio"
    consumes = {VIDEO_DOWNLOADED: events_pb2.VideoDownloaded}
    produces = (AUDIO_EXTRACTED,)
    config_type = AudioConfig
    rpc = Rpc(audio_pb2, "AudioService", "ExtractAudio")

    def validate(self, request: audio_pb2.ExtractAudioRequest) -> None:
        check_ref(request.video, "video", "the stored video to extract audio from")
        key_part(request.video_id, "video_id")

    async def run(self, request: audio_pb2.ExtractAudioRequest, config: AudioConfig) -> audio_pb2.ExtractAudioResponse:
        store = self.ctx.store
        with tempfile.TemporaryDirectory(dir=self.ctx.work_dir) as tmp:
            source = await asyncio.to_thread(store.get_file, request.video, Path(tmp) / "video")
            wav, source_wav = Path(tmp) / "audio.wav", Path(tmp) / "source.wav"
            media = await asyncio.to_thread(extract_audio, source, wav, config, source_wav)
            key = object_key(request.video_id, "audio", "audio.wav")
            response = audio_pb2.ExtractAudioResponse(media=media)
            response.audio.CopyFrom(await asyncio.to_thread(store.put_file, key, wav, "audio/wav"))
            if source_wav.is_file():
                key = object_key(request.video_id, "audio", f"source-{source_rate(media, config)}.wav")
                response.source_audio.CopyFrom(await asyncio.to_thread(store.put_file, key, source_wav, "audio/wav"))
        return response

    def request_of(self, event: events_pb2.VideoDownloaded) -> audio_pb2.ExtractAudioRequest:
        return audio_pb2.ExtractAudioRequest(video=event.envelope.video, video_id=event.envelope.video_id)

    def output_of(self, event, response: audio_pb2.ExtractAudioResponse) -> Output:
        out = forward(event, events_pb2.AudioExtracted, audio=response.audio, media=response.media)
        if response.HasField("source_audio"):
            out.envelope.source_audio.CopyFrom(response.source_audio)
        return Output([(AUDIO_EXTRACTED, out)], items=1)
