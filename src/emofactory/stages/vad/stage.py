"""The vad stage: a stored WAV -> speech segments, stored as JSON.

The document's key carries a hash of the settings, so one video segmented with two configs keeps
both, and the same config always writes the same key (idempotent)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from pathlib import Path

from emofactory.core.config import config_digest
from emofactory.core.errors import PermanentError, SettingError
from emofactory.core.events import AUDIO_EXTRACTED, SPEECH_SEGMENTED, forward
from emofactory.core.media import read_pcm
from emofactory.core.stage import Output, Rpc, Stage
from emofactory.core.store import check_ref, key_part, object_key
from emofactory.stages.vad.config import VadConfig, checked_options
from emofactory.stages.vad.engines import silero_session
from emofactory.stages.vad.segmentation import segment_speech, to_segments
from emofactory.v1 import common_pb2, events_pb2, vad_pb2


def segments_document(video_id: str, config: VadConfig, duration_s: float, segments) -> bytes:
    doc = {
        "video_id": video_id,
        "duration_s": round(duration_s, 3),
        "config": dataclasses.asdict(config),
        "segments": [
            {
                "segment_id": s.segment_id,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "start_reason": common_pb2.SplitReason.Name(s.start_reason),
            }
            for s in segments
        ],
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def chunk_segments(segments, chunk_s: float) -> list[list]:
    """The segments in time order, in runs of about `chunk_s` seconds of the video: a chunk ends before
    the first segment that starts `chunk_s` or more after the chunk's first one. A video without
    speech is one empty chunk, so its later stages still record it."""
    chunks: list[list] = [[]]
    for segment in sorted(segments, key=lambda s: s.start_s):
        if chunks[-1] and chunk_s and segment.start_s - chunks[-1][0].start_s >= chunk_s:
            chunks.append([])
        chunks[-1].append(segment)
    return chunks


def _segment_file(path: Path, video_id: str, config: VadConfig):
    pcm, rate = read_pcm(path)
    return to_segments(video_id, segment_speech(pcm, rate, config)), len(pcm) / rate


class VadStage(Stage):
    name = "vad"
    consumes = {AUDIO_EXTRACTED: events_pb2.AudioExtracted}
    produces = (SPEECH_SEGMENTED,)
    config_type = VadConfig
    rpc = Rpc(vad_pb2, "VadService", "DetectSegments")
    check = staticmethod(checked_options)

    def prepare(self) -> None:
        if self.defaults.engine == "silero":
            try:
                silero_session(self.defaults.silero_model_path)
            except PermanentError as exc:
                raise SettingError("vad.silero_model_path", str(exc)) from exc

    def validate(self, request: vad_pb2.DetectSegmentsRequest) -> None:
        check_ref(request.audio, "audio", "the stored WAV to segment")
        key_part(request.video_id, "video_id")

    async def run(self, request: vad_pb2.DetectSegmentsRequest, config: VadConfig) -> vad_pb2.DetectSegmentsResponse:
        key = object_key(request.video_id, "vad", f"segments-{config_digest(config)}.json")
        with tempfile.TemporaryDirectory(dir=self.ctx.work_dir) as tmp:
            wav = await asyncio.to_thread(self.ctx.store.get_file, request.audio, Path(tmp) / "audio.wav")
            segments, duration = await asyncio.to_thread(_segment_file, wav, request.video_id, config)
        doc = segments_document(request.video_id, config, duration, segments)
        ref = await asyncio.to_thread(self.ctx.store.put_bytes, key, doc, "application/json")
        return vad_pb2.DetectSegmentsResponse(
            segments=segments,
            segments_doc=ref,
            duration_s=duration,
            speech_s=sum(s.end_s - s.start_s for s in segments),
        )

    def request_of(self, event: events_pb2.AudioExtracted) -> vad_pb2.DetectSegmentsRequest:
        return vad_pb2.DetectSegmentsRequest(audio=event.envelope.audio, video_id=event.envelope.video_id)

    async def on_event(self, subject: str, event: events_pb2.AudioExtracted, config: VadConfig) -> Output:
        response = await self.run(self.request_of(event), config)
        documents = {"vad": response.segments_doc}
        chunks = chunk_segments(response.segments, config.chunk_s)
        out = Output(items=len(response.segments))
        for index, segments in enumerate(chunks):
            segmented = forward(event, events_pb2.SpeechSegmented, documents=documents, segments=segments)
            segmented.envelope.chunk, segmented.envelope.chunks = index, len(chunks)
            out.events.append((SPEECH_SEGMENTED, segmented))
        return out
