"""The asr stage: a stored WAV and its speech segments -> a transcript per segment (failures flagged,
never dropped), stored as JSON under a key that carries the settings' digest (language included)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from functools import cache
from pathlib import Path

from google.protobuf.json_format import MessageToDict

from emofactory.core.backend import ModelBackend
from emofactory.core.config import config_digest
from emofactory.core.events import SPEECH_SEGMENTED, SPEECH_TRANSCRIBED, forward
from emofactory.core.media import check_segments, read_pcm, span_name
from emofactory.core.stage import Output, Rpc
from emofactory.core.store import check_ref, key_part, object_key
from emofactory.models.check import load_multilingual
from emofactory.stages.asr.config import AsrConfig, checked_options
from emofactory.stages.asr.engines import Engine, make_engine
from emofactory.stages.asr.transcribe import transcribe_segments
from emofactory.stages.base import ModelStage
from emofactory.v1 import asr_pb2, common_pb2, events_pb2


@cache
def engine_for(config: AsrConfig, backend: ModelBackend) -> Engine:
    """Engines load their models once per process and settings."""
    return make_engine(config, backend)


def transcripts_document(video_id: str, config: AsrConfig, transcripts) -> bytes:
    doc = {
        "video_id": video_id,
        "config": dataclasses.asdict(config),
        "transcripts": [MessageToDict(t, preserving_proto_field_name=True) for t in transcripts],
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False).encode()


def _transcribe_file(path: Path, video_id: str, segments, config: AsrConfig, backend: ModelBackend):
    pcm, rate = read_pcm(path)
    engine = engine_for(dataclasses.replace(config, language=""), backend)
    return transcribe_segments(pcm, rate, video_id, segments, config.language, engine, config)


class AsrStage(ModelStage):
    name = "asr"
    consumes = {SPEECH_SEGMENTED: events_pb2.SpeechSegmented}
    produces = (SPEECH_TRANSCRIBED,)
    config_type = AsrConfig
    rpc = Rpc(asr_pb2, "AsrService", "Transcribe")
    check = staticmethod(checked_options)

    def models_used(self) -> tuple[str, ...]:
        return ("whisper",) if self.defaults.engine == "whisper" else ()

    def prepare(self) -> None:
        super().prepare()
        if self.models_used() and self.models.whisper_multilingual_path:  # else joined at set-up, loaded when asked
            load_multilingual(self.backend, self.models)

    def validate(self, request: asr_pb2.TranscribeRequest) -> None:
        check_ref(request.audio, "audio", "the stored WAV to transcribe")
        key_part(request.video_id, "video_id")
        check_segments(request.segments)

    async def run(self, request: asr_pb2.TranscribeRequest, config: AsrConfig) -> asr_pb2.TranscribeResponse:
        """The request's language (a job's) wins over the configured one; the document records it."""
        config = dataclasses.replace(config, language=request.language or config.language)
        store, video_id = self.ctx.store, request.video_id
        segments = list(request.segments)
        transcripts = await asyncio.to_thread(self._transcribe, request.audio, video_id, segments, config)
        key = object_key(video_id, "asr", config_digest(config), f"transcripts-{span_name(segments)}.json")
        doc = transcripts_document(video_id, config, transcripts)
        ref = await asyncio.to_thread(store.put_bytes, key, doc, "application/json")
        return asr_pb2.TranscribeResponse(transcripts=transcripts, transcripts_doc=ref)

    def _transcribe(self, audio: common_pb2.ObjectRef, video_id: str, segments, config: AsrConfig):
        with self.ctx.copies.local_copy(audio) as wav:
            return _transcribe_file(wav, video_id, segments, config, self.backend)

    def request_of(self, event: events_pb2.SpeechSegmented) -> asr_pb2.TranscribeRequest:
        envelope = event.envelope
        return asr_pb2.TranscribeRequest(
            audio=envelope.audio,
            video_id=envelope.video_id,
            segments=event.segments,
            language=envelope.context.language,
        )

    def output_of(self, event, response: asr_pb2.TranscribeResponse) -> Output:
        transcripts = response.transcripts
        out = forward(
            event,
            events_pb2.SpeechTranscribed,
            documents={"asr": response.transcripts_doc},
            segments=event.segments,
            transcripts=transcripts,
        )
        failed = [t for t in transcripts if t.failed]
        reason = f"{len(failed)} of {len(transcripts)} segments flagged: {failed[0].failure_reason}" if failed else ""
        return Output(
            [(SPEECH_TRANSCRIBED, out)], reason=reason, items=len(transcripts) - len(failed), flagged=len(failed)
        )
