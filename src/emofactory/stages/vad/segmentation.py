"""Speech segmentation, a function of (16 kHz mono PCM, VadConfig) -> segments (seed 000 §3.3):
VAD frames -> speech runs -> gaps under min_silence_s merged -> runs under min_segment_s dropped
-> edges tightened to the speech energy -> speaker-change split -> optional max-length split (seed 002 §3.4.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emofactory.core.media import segment_id
from emofactory.stages.vad.config import VadConfig
from emofactory.stages.vad.engines import speech_flags
from emofactory.stages.vad.speaker import change_points, similarity_curve, speaker_features
from emofactory.v1 import common_pb2

SILENCE = common_pb2.SPLIT_REASON_SILENCE
SPEAKER = common_pb2.SPLIT_REASON_SPEAKER_CHANGE
MAX_LENGTH = common_pb2.SPLIT_REASON_MAX_LENGTH


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float
    reason: int = SILENCE

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def speech_runs(flags: np.ndarray, frame_s: float, config: VadConfig) -> list[Span]:
    """Runs of speech frames, merged over gaps shorter than min_silence_s, dropped under min_segment_s."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs: list[list[float]] = []
    for start, end in zip(edges[::2] * frame_s, edges[1::2] * frame_s):
        if runs and start - runs[-1][1] < config.min_silence_s:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [Span(round(float(s), 3), round(float(e), 3)) for s, e in runs if e - s >= config.min_segment_s]


def trim_edges(spans: list[Span], pcm: np.ndarray, sample_rate: int, config: VadConfig) -> list[Span]:
    """Moves each edge inward to the first / last 10 ms frame within edge_trim_db of the loud level."""
    hop = sample_rate // 100
    out = []
    for span in spans:
        a, b = int(span.start_s * sample_rate), int(span.end_s * sample_rate)
        frames = pcm[a : a + (b - a) // hop * hop].astype(np.float32).reshape(-1, hop)
        rms = np.sqrt((frames**2).mean(axis=1) + 1e-9)
        loud = np.flatnonzero(rms >= np.percentile(rms, 90) * 10 ** (-config.edge_trim_db / 20))
        limit = int(config.edge_trim_max_s * 100)
        first, last = min(loud[0], limit), max(loud[-1] + 1, len(rms) - limit)
        start, end = span.start_s + first / 100, span.start_s + last / 100
        out.append(Span(round(start, 3), round(end, 3), span.reason) if end - start >= config.min_segment_s else span)
    return out


def split_speakers(spans: list[Span], pcm: np.ndarray, sample_rate: int, config: VadConfig) -> list[Span]:
    features, voiced = speaker_features(pcm.astype(np.float32) / 32768.0, sample_rate)
    out = []
    for span in spans:
        curve = similarity_curve(features, voiced, span.start_s, span.end_s, config)
        cuts = change_points(curve, span.start_s, span.end_s, config)
        bounds = [span.start_s, *cuts, span.end_s]
        reasons = [span.reason] + [SPEAKER] * len(cuts)
        out += [Span(round(float(a), 3), round(float(b), 3), r) for a, b, r in zip(bounds, bounds[1:], reasons)]
    return out


def split_long(spans: list[Span], max_s: float) -> list[Span]:
    out = []
    for span in spans:
        parts = max(1, math.ceil(span.duration_s / max_s - 1e-9))
        step = span.duration_s / parts
        for i in range(parts):
            start = span.start_s + i * step
            end = span.end_s if i == parts - 1 else span.start_s + (i + 1) * step
            out.append(Span(round(start, 3), round(end, 3), span.reason if i == 0 else MAX_LENGTH))
    return out


def segment_speech(pcm: np.ndarray, sample_rate: int, config: VadConfig) -> list[Span]:
    flags, frame_s = speech_flags(pcm, sample_rate, config)
    spans = speech_runs(flags, frame_s, config)
    if config.edge_trim_db > 0:
        spans = trim_edges(spans, pcm, sample_rate, config)
    if config.speaker_change and spans:
        spans = split_speakers(spans, pcm, sample_rate, config)
    if config.max_segment_s > 0:
        spans = split_long(spans, config.max_segment_s)
    return spans


def to_segments(video_id: str, spans: list[Span]) -> list[common_pb2.Segment]:
    return [
        common_pb2.Segment(
            segment_id=segment_id(video_id, s.start_s, s.end_s),
            start_s=s.start_s,
            end_s=s.end_s,
            start_reason=s.reason,
        )
        for s in spans
    ]
