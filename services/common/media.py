"""ffprobe: what a media file holds. A file that is not media is a permanent, clearly worded error."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from services.common.errors import PermanentError
from services.common.gen.emofactory.v1 import common_pb2


def ffmpeg_reason(exc: ffmpeg.Error) -> str:
    """The last meaningful lines ffmpeg wrote, which say what was wrong with the input."""
    lines = [ln.strip() for ln in (exc.stderr or b"").decode(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) or str(exc)


def probe(path: Path | str) -> common_pb2.MediaInfo:
    try:
        data = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        raise PermanentError(f"not a readable media file: {ffmpeg_reason(exc)}") from exc
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    info = common_pb2.MediaInfo(
        duration_s=float(data.get("format", {}).get("duration") or 0.0),
        has_video=video is not None,
        has_audio=audio is not None,
    )
    if video:
        info.width, info.height = int(video.get("width", 0)), int(video.get("height", 0))
        num, _, den = (video.get("avg_frame_rate") or "0/1").partition("/")
        info.fps = float(num) / float(den) if float(den or 0) else 0.0
    if audio:
        info.sample_rate = int(audio.get("sample_rate") or 0)
        info.channels = int(audio.get("channels") or 0)
    return info


def _is_cover(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))
