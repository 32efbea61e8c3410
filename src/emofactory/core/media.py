"""ffprobe: what a media file holds (for the services that run FFmpeg's command line; those that
hold only its libraries probe with PyAV, core.video). A file that is not media is a permanent, clearly worded error."""

from __future__ import annotations

import wave
from pathlib import Path

import ffmpeg
import numpy as np

from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.core.store import key_part
from emofactory.v1 import common_pb2


def ffmpeg_reason(exc: ffmpeg.Error) -> str:
    """The last meaningful lines ffmpeg wrote, which say what was wrong with the input."""
    lines = [ln.strip() for ln in (exc.stderr or b"").decode(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) or str(exc)


def _ffprobe(path: Path | str, **options) -> dict:
    try:
        return ffmpeg.probe(str(path), **options)
    except ffmpeg.Error as exc:
        raise PermanentError(f"not a readable media file: {ffmpeg_reason(exc)}") from exc


def probe(path: Path | str) -> common_pb2.MediaInfo:
    data = _ffprobe(path)
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    info = common_pb2.MediaInfo(
        duration_s=float(data.get("format", {}).get("duration") or 0.0),
        has_video=video is not None,
        has_audio=audio is not None,
    )
    if video:
        # As displayed: FFmpeg's decodes (autorotate) turn the frames upright, so a portrait phone
        # video's frames are height x width; read at the stored size, they came out scrambled.
        width, height = int(video.get("width", 0)), int(video.get("height", 0))
        info.width, info.height = (height, width) if _rotation(video) % 180 else (width, height)
        num, _, den = (video.get("avg_frame_rate") or "0/1").partition("/")
        info.fps = float(num) / float(den) if float(den or 0) else 0.0
    if audio:
        info.sample_rate = int(audio.get("sample_rate") or 0)
        info.channels = int(audio.get("channels") or 0)
    return info


def _rotation(stream: dict) -> int:
    """A stream's display-matrix rotation in degrees, counterclockwise, a multiple of 90 (0: none)."""
    turns = [d.get("rotation", 0) for d in stream.get("side_data_list", [])]
    return round(float(next((t for t in turns if t), 0)) / 90) % 4 * 90


def _is_cover(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def read_pcm(path: Path | str) -> tuple[np.ndarray, int]:
    """int16 samples and rate of a mono 16-bit WAV (the audio stage's output)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise PermanentError(
                    f"expected 16-bit mono PCM WAV, got {wav.getnchannels()} channels of {8 * wav.getsampwidth()} bits"
                )
            return np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise PermanentError(f"not a PCM WAV file: {exc}") from exc


def segment_id(video_id: str, start_s: float, end_s: float) -> str:
    """Deterministic: the same span of the same video always has the same id."""
    return f"{video_id}-{round(start_s * 1000):08d}-{round(end_s * 1000):08d}"


def span_name(segments) -> str:
    """The key part of a run of segments' documents: the first one's start to the last one's end, in
    ms as in segment ids ("none" for no segments). Each chunk of a video names its own documents by it."""
    if not segments:
        return "none"
    return f"{round(segments[0].start_s * 1000):08d}-{round(segments[-1].end_s * 1000):08d}"


def check_segments(segments) -> None:
    seen = set()
    for i, s in enumerate(segments):
        key_part(s.segment_id, f"segments[{i}].segment_id")
        if not 0 <= s.start_s < s.end_s:
            raise InvalidRequest(f"segments[{i}]", f"needs 0 <= start_s < end_s, not {s.start_s}..{s.end_s}")
        if s.segment_id in seen:
            raise InvalidRequest(f"segments[{i}].segment_id", f"{s.segment_id!r} appears twice")
        seen.add(s.segment_id)
