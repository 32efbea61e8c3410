"""Running a labelled set through the factory in one process (`run_local`, the pipeline's stages up
to the labeler) and reading back, per file, what each modality and the fused label say.

One job holds every file. A file with audio goes through the pipeline's stages; a file without audio
(a video-only clip) has no speech to segment, so its face is judged on the whole file: the stage that
analyses faces runs on one segment spanning it. Per file, a modality's scores are its
segments' scores averaged by duration; the fused label is the most confident kept segment's, else the
most confident one's (kept: no)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emofactory.core.emotions import CANONICAL, emotion_name
from emofactory.core.events import SEGMENTS_LABELED, VIDEO_DOWNLOADED, context_of
from emofactory.core.media import segment_id
from emofactory.core.stage import Stage, StageContext
from emofactory.evaluation.labelled import Item
from emofactory.evaluation.metrics import Prediction
from emofactory.pipeline import NAMES, STAGES, stage_class
from emofactory.run_local import run_local
from emofactory.v1 import common_pb2, vision_pb2

MODALITIES = ("face", "audio", "text")
THROUGH_LABELER = STAGES[: NAMES.index("labeler") + 1]
FACES = stage_class("vision")  # the stage that scores a segment's faces


@dataclass
class FileResult:
    item: Item
    # Per modality: canonical probabilities (None: the modality gave nothing for this file).
    scores: dict[str, np.ndarray | None] = field(default_factory=dict)
    fused: Prediction | None = None
    failure: str = ""
    # What the file holds (ingest's probe): a modality is judged only on files that have its input.
    has_video: bool = False
    has_audio: bool = False

    def judged(self, modality: str) -> bool:
        return self.has_video if modality == "face" else self.has_audio

    def prediction(self, modality: str) -> Prediction:
        probs = self.scores.get(modality)
        if probs is None:
            return Prediction(self.item.label, "")
        return Prediction(self.item.label, CANONICAL[int(np.argmax(probs))], float(np.max(probs)))


def _vector(scores: common_pb2.EmotionScores) -> np.ndarray:
    return np.array([getattr(scores, c) for c in CANONICAL], float)


def _mean(parts: Sequence[tuple[np.ndarray, float]]) -> np.ndarray | None:
    if not parts:
        return None
    weights = np.array([max(w, 1e-3) for _, w in parts])
    return np.average(np.stack([p for p, _ in parts]), axis=0, weights=weights)


def _from_labels(result: FileResult, event) -> None:
    spans = {s.segment_id: s.end_s - s.start_s for s in event.segments}
    for modality in MODALITIES:
        parts = [(_vector(getattr(x, modality)), spans[x.segment_id]) for x in event.labels if x.HasField(modality)]
        result.scores[modality] = _mean(parts)
    labelled = [x for x in event.labels if x.label.emotion]
    if labelled:
        best = max(labelled, key=lambda x: (x.label.kept, x.label.confidence))
        result.fused = Prediction(
            result.item.label, emotion_name(best.label.emotion), best.label.confidence, best.label.kept
        )


async def _face_of_whole_file(stage: Stage, downloaded, duration_s: float) -> np.ndarray | None:
    envelope = downloaded.envelope
    segment = common_pb2.Segment(segment_id=segment_id(envelope.video_id, 0, duration_s), start_s=0, end_s=duration_s)
    config = stage.config_for(context_of(downloaded))
    request = vision_pb2.AnalyzeSegmentsRequest(video=envelope.video, video_id=envelope.video_id, segments=[segment])
    (vision,) = (await stage.run(request, config)).segments
    return _vector(vision.face) if vision.face_frames else None


async def run_items(
    items: Sequence[Item],
    root: Path,
    config: common_pb2.JobConfig,
    defaults: Mapping[str, object] | None = None,
    language: str = "en-US",
) -> list[FileResult]:
    roots = tuple(sorted({str(i.path.parent) for i in items}))
    ingest = stage_class("ingest")  # it reads the files from their folders, only those it is allowed
    defaults = {ingest.name: ingest.config_type(local_roots=roots), **(defaults or {})}
    sources = [common_pb2.Source(path=str(i.path)) for i in items]
    run = await run_local(sources, root, config=config, language=language, stages=THROUGH_LABELER, defaults=defaults)
    by_source = {v.source: v for v in run.job.videos}
    downloaded = {e.envelope.video_id: e for e in run.of(VIDEO_DOWNLOADED)}
    labeled = {e.envelope.video_id: e for e in run.of(SEGMENTS_LABELED)}
    vision = FACES(StageContext(run.store, str(root / "work")), defaults.get(FACES.name))
    results = []
    for item in items:
        result, video = FileResult(item), by_source.get(str(item.path))
        got = downloaded.get(video.video_id) if video is not None else None
        if got is not None:
            result.has_video, result.has_audio = got.media.has_video, got.media.has_audio
        if got is not None and video.video_id in labeled:
            _from_labels(result, labeled[video.video_id])
        elif got is not None and not got.media.has_audio:
            result.scores["face"] = await _face_of_whole_file(vision, got, got.media.duration_s)
        else:
            failed = [s for s in (video.stages if video else []) if s.state == common_pb2.STAGE_STATE_FAILED]
            result.failure = f"{failed[0].stage}: {failed[0].reason}" if failed else "not processed"
        results.append(result)
    return results


def evaluate_items(
    items: Sequence[Item], root: Path, config: common_pb2.JobConfig, defaults=None, language: str = "en-US"
) -> list[FileResult]:
    return asyncio.run(run_items(items, Path(root), config, defaults, language))


def labeler_config(job: common_pb2.JobConfig):
    """The labeler's config of this job, as the stage reads it: its settings, then the job's options."""
    return stage_class("labeler").job_config(job)
