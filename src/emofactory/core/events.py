"""Event subjects and their payload types: `emo.<stage>.<past-tense event>`; dead letters on `emo.dlq.<stage>`."""

from __future__ import annotations

from google.protobuf.message import DecodeError, Message

from emofactory.core.errors import PermanentError
from emofactory.v1 import events_pb2

JOB_SUBMITTED = "emo.ingest.submitted"
VIDEO_DISCOVERED = "emo.ingest.discovered"
VIDEO_DOWNLOADED = "emo.ingest.downloaded"
AUDIO_EXTRACTED = "emo.audio.extracted"
SPEECH_SEGMENTED = "emo.vad.segmented"
VISION_ANALYZED = "emo.vision.analyzed"
SPEECH_TRANSCRIBED = "emo.asr.transcribed"
SEGMENTS_LABELED = "emo.labeler.labeled"

PAYLOADS: dict[str, type[Message]] = {
    JOB_SUBMITTED: events_pb2.JobSubmitted,
    VIDEO_DISCOVERED: events_pb2.VideoDiscovered,
    VIDEO_DOWNLOADED: events_pb2.VideoDownloaded,
    AUDIO_EXTRACTED: events_pb2.AudioExtracted,
    SPEECH_SEGMENTED: events_pb2.SpeechSegmented,
    VISION_ANALYZED: events_pb2.VisionAnalyzed,
    SPEECH_TRANSCRIBED: events_pb2.SpeechTranscribed,
    SEGMENTS_LABELED: events_pb2.SegmentsLabeled,
}


def dead_letter_subject(stage: str) -> str:
    return f"emo.dlq.{stage}"


def decode(subject: str, data: bytes) -> Message:
    kind = PAYLOADS.get(subject)
    if kind is None:
        raise PermanentError(f"no payload type is known for subject {subject!r}")
    try:
        return kind.FromString(data)
    except DecodeError as exc:
        raise PermanentError(f"malformed {kind.__name__} payload on {subject}: {exc}") from exc


def message_id(job_id: str, video_id: str, event: str) -> str:
    """Nats-Msg-Id: the same logical event published twice is stored once."""
    return f"{job_id}.{video_id}.{event}"
