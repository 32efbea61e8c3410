"""Clip media for one kept segment: an MP4 with video and audio, a sample-exact 16 kHz mono WAV cut
from the audio stage's PCM, and the sync check of seed 003 §3.1: |duration(audio) - (t_end -
t_start)| <= tolerance, else one accurate re-encoded cut, else the clip is flagged.

The MP4 is a stream copy where the source is already H.264 (yuv420p) and AAC and a keyframe lies
shortly before the segment: the clip starts at that keyframe and an edit list makes players and
decoders (FFmpeg, and what is built on it) show exactly the segment's frames, unchanged. No
re-encode, so no quality loss and about 6x less time; the frames before the segment are extra
bytes, hence the bound on them. Other clips are encoded with x264 (seed 000 §4.2's fast preset)."""

from __future__ import annotations

import bisect
import math
import struct
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import ffmpeg
import numpy as np

from emofactory.core.errors import PermanentError
from emofactory.v1 import common_pb2


@dataclass
class ClipMedia:
    mp4: Path
    wav: Path
    audio_duration_s: float
    sync_ok: bool
    flags: list[str] = field(default_factory=list)


def cut_wav(pcm: np.ndarray, rate: int, start_s: float, end_s: float, out: Path) -> Path:
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm[round(start_s * rate) : round(end_s * rate)].astype("<i2").tobytes())
    return out


def stream_copyable(video: Path) -> bool:
    """H.264 yuv420p video and AAC audio (or none): what the x264 path would make, so clips can be
    copies."""
    try:
        streams = ffmpeg.probe(str(video)).get("streams", [])
    except ffmpeg.Error:
        return False
    pictures = [s for s in streams if s.get("codec_type") == "video"]
    sounds = [s for s in streams if s.get("codec_type") == "audio"]
    return (
        bool(pictures)
        and (pictures[0].get("codec_name"), pictures[0].get("pix_fmt")) == ("h264", "yuv420p")
        and all(s.get("codec_name") == "aac" for s in sounds[:1])
    )


def copy_keyframes(video: Path) -> list[float]:
    """Times of the source's keyframes, where stream copies can start; none when its codecs are not
    what the x264 path makes (read from the packets, nothing is decoded)."""
    if not stream_copyable(video):
        return []
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags"]
    result = subprocess.run([*command, "-of", "csv=p=0", str(video)], capture_output=True, text=True)
    times = []
    for line in result.stdout.splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags and pts not in ("", "N/A"):
            times.append(float(pts))
    return sorted(times)


def preroll_s(keyframes: list[float], start_s: float) -> float:
    """Seconds a stream copy starting at `start_s` carries before it (inf: no keyframe before)."""
    i = bisect.bisect_right(keyframes, start_s + 1e-6) - 1
    return start_s - keyframes[i] if i >= 0 else math.inf


def cut_mp4(
    video: Path, start_s: float, end_s: float, out: Path, preset: str, crf: int, exact: bool = False, copy: bool = False
) -> Path:
    """Input seeking (fast) by default; `exact` decodes from the start of the file up to the cut;
    `copy` copies the streams (the muxer writes the edit list)."""
    span = ["-ss", f"{start_s:.3f}", "-t", f"{end_s - start_s:.3f}"]
    inputs = ["-i", str(video), *span] if exact else [*span, "-i", str(video)]
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-map", "0:v:0?", "-map", "0:a:0?"]
    if copy:
        command += ["-c", "copy"]
    else:
        command += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
        command += ["-c:a", "aac", "-b:a", "128k"]
    command += ["-movflags", "+faststart", str(out)]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        raise PermanentError(f"could not cut the clip {start_s:.2f}-{end_s:.2f} s: {' | '.join(lines[-3:])}")
    return out


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, box end) of the ISO-BMFF boxes in data[start:end]."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        head = 8
        if size == 1:
            (size,), head = struct.unpack_from(">Q", data, start + 8), 16
        elif size == 0:
            size = end - start
        if size < head or start + size > end:
            raise ValueError(f"bad {kind!r} box at byte {start}")
        yield kind, start + head, start + size
        start += size


def _child(data: bytes, span: tuple[int, int], kind: bytes) -> tuple[int, int] | None:
    return next(((a, b) for k, a, b in _boxes(data, *span) if k == kind), None)


def _full_box(data: bytes, at: int, v0: str, v1: str) -> tuple:
    """A full box's fields past its version and flags, in the layout of its version."""
    return struct.unpack_from(v1 if data[at] else v0, data, at + 4)


def audio_duration(path: Path) -> float:
    """Seconds of the MP4's first audio track as players see it (0 when it has none): its edit
    list's duration where it has one, else its media duration. This is the number ffprobe gives,
    read from the moov box here, without starting a process per clip."""
    try:
        data = path.read_bytes()
        moov = _child(data, (0, len(data)), b"moov")
        if moov is None:
            raise ValueError("no moov box")
        (movie_scale,) = _full_box(data, _child(data, moov, b"mvhd")[0], ">8xI", ">16xI")
        for kind, start, end in _boxes(data, *moov):
            mdia = _child(data, (start, end), b"mdia") if kind == b"trak" else None
            hdlr = mdia and _child(data, mdia, b"hdlr")
            if not hdlr or data[hdlr[0] + 8 : hdlr[0] + 12] != b"soun":
                continue
            edts = _child(data, (start, end), b"edts")
            elst = edts and _child(data, edts, b"elst")
            if elst:
                (count,) = struct.unpack_from(">I", data, elst[0] + 4)
                wide = data[elst[0]] == 1
                entry, layout = (20, ">Qq") if wide else (12, ">Ii")
                spans = [struct.unpack_from(layout, data, elst[0] + 8 + i * entry) for i in range(count)]
                return sum(d for d, media_time in spans if media_time != -1) / movie_scale
            scale, duration = _full_box(data, _child(data, mdia, b"mdhd")[0], ">8xII", ">16xIQ")
            return duration / scale
        return 0.0
    except (OSError, ValueError, TypeError, struct.error) as exc:
        raise PermanentError(f"cannot read the clip's audio in {path.name}: {exc}") from exc


def cut_clip(
    video: Path, pcm: np.ndarray, rate: int, segment: common_pb2.Segment, out_dir: Path, preset: str, crf: int,
    tolerance_s: float, copy: bool = False,
) -> ClipMedia:  # fmt: skip
    span = segment.end_s - segment.start_s
    mp4 = out_dir / f"{segment.segment_id}.mp4"
    wav = cut_wav(pcm, rate, segment.start_s, segment.end_s, out_dir / f"{segment.segment_id}.wav")
    cut_mp4(video, segment.start_s, segment.end_s, mp4, preset, crf, copy=copy)
    duration = audio_duration(mp4)
    flags = ["stream_copy"] if copy else []
    if abs(duration - span) > tolerance_s:
        cut_mp4(video, segment.start_s, segment.end_s, mp4, preset, crf, exact=True)
        duration = audio_duration(mp4)
        flags = ["recut"]
    ok = abs(duration - span) <= tolerance_s
    if not ok:
        flags.append("out_of_sync")
    return ClipMedia(mp4, wav, duration, ok, flags)
