"""The asr stage on PCM: cut each segment out, transcribe the clips in batches, retry transient
failures with backoff, and flag (never drop) the segments that still fail."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from emofactory.core.errors import PermanentError, TransientError
from emofactory.stages.asr.config import AsrConfig
from emofactory.stages.asr.dialogue import apply_dialogue_rules
from emofactory.stages.asr.engines import Engine, Recognized
from emofactory.v1 import asr_pb2, common_pb2


def clip(pcm: np.ndarray, rate: int, segment: common_pb2.Segment) -> np.ndarray:
    return pcm[max(0, round(segment.start_s * rate)) : round(segment.end_s * rate)]


def loudness_dbfs(samples: np.ndarray) -> float:
    rms = np.sqrt(np.mean(np.square(samples.astype(np.float64)))) if len(samples) else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768.0)


def _recognize_with_retries(engine: Engine, clips, rate, language, config: AsrConfig, sleep) -> list[tuple]:
    """(outcome, attempts) per clip; clips whose outcome is transient are sent again, up to retries.
    Silent clips never reach the engine."""
    levels = [loudness_dbfs(c) for c in clips]
    audible = [i for i, level in enumerate(levels) if level >= config.silence_dbfs]
    outcomes: list = [PermanentError(f"silent audio ({level:.0f} dBFS): nothing to transcribe") for level in levels]
    for i, outcome in zip(audible, engine.recognize([clips[i] for i in audible], rate, language) if audible else []):
        outcomes[i] = outcome
    attempts = [int(i in audible) for i in range(len(clips))]
    for retry in range(config.retries):
        again = [i for i, o in enumerate(outcomes) if isinstance(o, TransientError)]
        if not again:
            break
        sleep(config.backoff_s * 2**retry)
        for i, outcome in zip(again, engine.recognize([clips[i] for i in again], rate, language)):
            outcomes[i], attempts[i] = outcome, attempts[i] + 1
    return list(zip(outcomes, attempts))


def _transcript(segment, outcome, attempts, engine: str, language: str) -> asr_pb2.SegmentTranscript:
    out = asr_pb2.SegmentTranscript(
        segment_id=segment.segment_id, engine=engine, language=language, attempts=attempts, kept=True
    )
    if isinstance(outcome, Recognized):
        out.text = outcome.text
        for word, start, end, confidence in outcome.words:
            out.words.add(
                text=word, start_s=segment.start_s + start, end_s=segment.start_s + end, confidence=confidence
            )
    else:
        out.failed, out.failure_reason = True, str(outcome)
    return out


def transcribe_segments(
    pcm: np.ndarray,
    rate: int,
    video_id: str,
    segments: Sequence[common_pb2.Segment],
    language: str,
    engine: Engine,
    config: AsrConfig,
    sleep: Callable[[float], None] = time.sleep,
) -> list[asr_pb2.SegmentTranscript]:
    transcripts = []
    for first in range(0, len(segments), max(1, config.batch_size)):
        batch = segments[first : first + config.batch_size]
        clips = [clip(pcm, rate, s) for s in batch]
        for segment, (outcome, attempts) in zip(
            batch, _recognize_with_retries(engine, clips, rate, language, config, sleep)
        ):
            transcripts.append(_transcript(segment, outcome, attempts, engine.name, language))
    if config.dialogue_mode:
        for transcript in transcripts:
            apply_dialogue_rules(transcript, video_id, config.dialogue_min_words, config.dialogue_terminal)
    return transcripts
