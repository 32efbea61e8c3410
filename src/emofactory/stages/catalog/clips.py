"""Clip media for the kept segments of one video: MP4s with video and audio, sample-exact 16 kHz mono
WAVs cut from the audio stage's PCM, and the sync check of seed 003 §3.1: |duration(audio) - (t_end -
t_start)| <= tolerance, else the clip is flagged.

The MP4s are cut a group of nearby segments at a time, from one decode (`encode.cut_group`), on
as many threads as cores. Their frames and samples are exactly the span's, so the accurate re-cut
seed 003 makes of a clip out of sync would give the same file: only a source whose audio stops
short fails the check, and is flagged."""

from __future__ import annotations

import os
import struct
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emofactory.core.errors import PermanentError
from emofactory.core.video import display_rotation
from emofactory.stages.catalog.encode import cut_group
from emofactory.v1 import common_pb2


@dataclass
class ClipMedia:
    segment_id: str
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


def span_groups(segments, max_gap_s: float, max_span_s: float) -> list[list]:
    """Segments in time order, grouped for one decode each: a group goes on while the next segment
    starts at most `max_gap_s` after the group's end (so little silence is decoded for nothing), and
    spans at most `max_span_s` (so the groups of a long video keep every core busy)."""
    groups: list[list] = []
    end = 0.0  # of the last group
    for segment in sorted(segments, key=lambda s: s.start_s):
        if groups and segment.start_s - end <= max_gap_s and segment.end_s - groups[-1][0].start_s <= max_span_s:
            groups[-1].append(segment)
            end = max(end, segment.end_s)
        else:
            groups.append([segment])
            end = segment.end_s
    return groups


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


def checked_clip(mp4: Path, pcm: np.ndarray, rate: int, segment: common_pb2.Segment, tolerance_s: float) -> ClipMedia:
    """The clip's WAV beside its MP4, and the sync check."""
    wav = cut_wav(pcm, rate, segment.start_s, segment.end_s, mp4.with_suffix(".wav"))
    duration = audio_duration(mp4)
    ok = abs(duration - (segment.end_s - segment.start_s)) <= tolerance_s
    return ClipMedia(segment.segment_id, mp4, wav, duration, ok, [] if ok else ["out_of_sync"])


def cut_clips(video: Path, pcm: np.ndarray, rate: int, segments, out_dir: Path, config) -> Iterator[ClipMedia]:
    """Every segment's clip (`config`: the catalog's), a group's clips as soon as that group is cut, so
    the caller can store them and free the space: the groups encoded side by side (FFmpeg's
    libraries do the work, without the GIL)."""
    groups = span_groups(segments, config.group_gap_s, config.group_max_s)
    turns = display_rotation(video) // 90

    def one(group: list) -> list[ClipMedia]:
        mp4s = cut_group(video, group, out_dir, config.encoding, turns)
        return [checked_clip(mp4s[s.segment_id], pcm, rate, s, config.sync_tolerance_s) for s in group]

    with ThreadPoolExecutor(config.cut_workers or os.cpu_count() or 1) as pool:
        for clips in pool.map(one, groups):
            yield from clips
