"""emo.vad.segmented -> a transcript per segment in the store -> emo.asr.transcribed."""

from __future__ import annotations

import dataclasses

from services.asr.config import AsrConfig, checked_options
from services.asr.storage import transcribe_stored_audio
from services.common.backend import backend_for
from services.common.bus import publish
from services.common.config import ModelsConfig, load_section
from services.common.events import SPEECH_TRANSCRIBED, message_id
from services.common.gen.emofactory.v1 import common_pb2, events_pb2
from services.common.service import Runtime


def make_handler(rt: Runtime):
    defaults = load_section(AsrConfig, "asr")
    backend = backend_for(load_section(ModelsConfig, "models"))

    async def handle(subject: str, event: events_pb2.SpeechSegmented) -> None:
        ctx = event.context
        config = checked_options(defaults, ctx.config.asr if ctx.config.HasField("asr") else None)
        config = dataclasses.replace(config, language=ctx.language or config.language)
        transcripts, doc = await transcribe_stored_audio(
            rt, backend, event.audio, event.video_id, event.segments, config
        )
        out = events_pb2.SpeechTranscribed(
            context=ctx,
            video_id=event.video_id,
            video=event.video,
            audio=event.audio,
            segments=event.segments,
            transcripts=transcripts,
            transcripts_doc=doc,
        )
        await publish(rt.js, SPEECH_TRANSCRIBED, out, message_id(ctx.job_id, event.video_id, "asr.transcribed"))
        failed = [t for t in transcripts if t.failed]
        reason = f"{len(failed)} of {len(transcripts)} segments flagged: {failed[0].failure_reason}" if failed else ""
        await rt.jobs.record(
            ctx.job_id,
            event.video_id,
            "asr",
            common_pb2.STAGE_STATE_DONE,
            reason=reason,
            items=len(transcripts) - len(failed),
            flagged=len(failed),
        )

    return handle
