"""Event subjects and their payload types: `emo.<stage>.<past-tense event>`; dead letters on `emo.dlq.<stage>`."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import DecodeError, Message

from emofactory.core.errors import PermanentError
from emofactory.v1 import common_pb2, events_pb2

JOB_SUBMITTED = "emo.ingest.submitted"
VIDEO_DISCOVERED = "emo.ingest.discovered"
VIDEO_DOWNLOADED = "emo.ingest.downloaded"
AUDIO_EXTRACTED = "emo.audio.extracted"
SPEECH_SEGMENTED = "emo.vad.segmented"
VISION_ANALYZED = "emo.vision.analyzed"
SPEECH_TRANSCRIBED = "emo.asr.transcribed"
SEGMENTS_LABELED = "emo.labeler.labeled"


def context_of(event: Message) -> common_pb2.JobContext:
    """The job an event belongs to: in its envelope (events about a video) or its own (JobSubmitted)."""
    return event.envelope.context if "envelope" in event.DESCRIPTOR.fields_by_name else event.context


def video_id_of(event: Message) -> str:
    return event.envelope.video_id if "envelope" in event.DESCRIPTOR.fields_by_name else ""


def chunk_of(event: Message | None) -> tuple[int, int]:
    """(chunk, chunks) of the video an event is about; (0, 0) for the whole video."""
    if event is None or "envelope" not in event.DESCRIPTOR.fields_by_name:
        return 0, 0
    return event.envelope.chunk, event.envelope.chunks


def forward(
    event: Message,
    kind: type[Message],
    *,
    audio: common_pb2.ObjectRef | None = None,
    documents: Mapping[str, common_pb2.ObjectRef] | None = None,
    **fields,
) -> Message:
    """The next event about the same video: the envelope carried over, with what this stage stored
    (the audio, its documents by stage name) added, and the event's own fields."""
    envelope = events_pb2.Envelope()
    envelope.CopyFrom(event.envelope)
    if audio is not None:
        envelope.audio.CopyFrom(audio)
    for stage, ref in (documents or {}).items():
        envelope.documents[stage].CopyFrom(ref)
    return kind(envelope=envelope, **fields)


def dead_letter_subject(stage: str) -> str:
    return f"emo.dlq.{stage}"


def decode(subject: str, data: bytes, payloads: Mapping[str, type[Message]]) -> Message:
    """A delivered message as the payload type its consumer expects on that subject (`Stage.consumes`)."""
    kind = payloads.get(subject)
    if kind is None:
        raise PermanentError(f"no payload type is known for subject {subject!r}")
    try:
        return kind.FromString(data)
    except DecodeError as exc:
        raise PermanentError(f"malformed {kind.__name__} payload on {subject}: {exc}") from exc


def message_id(job_id: str, video_id: str, event: str, chunk: int = 0, chunks: int = 0) -> str:
    """Nats-Msg-Id: the same logical event published twice is stored once; each chunk's its own."""
    return f"{job_id}.{video_id}.{event}" + (f".{chunk}" if chunks else "")
