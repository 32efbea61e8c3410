"""The pipeline, declared once: its stages in order. The JetStream consumers (one per stage, filtered
on what it consumes), the services the local stack and the chart run, and the stages a job's videos
go through all derive from this list."""

from __future__ import annotations

from emofactory.core.config import CORE_SECTIONS
from emofactory.core.stage import Stage
from emofactory.stages.asr.stage import AsrStage
from emofactory.stages.audio.stage import AudioStage
from emofactory.stages.catalog.stage import CatalogStage
from emofactory.stages.ingest.stage import IngestStage
from emofactory.stages.labeler.stage import LabelerStage
from emofactory.stages.vad.stage import VadStage
from emofactory.stages.vision.stage import VisionStage

STAGES: tuple[type[Stage], ...] = (IngestStage, AudioStage, VadStage, VisionStage, AsrStage, LabelerStage, CatalogStage)
NAMES = tuple(s.name for s in STAGES)
# Every section of the settings (YAML file, EMO_<SECTION>__<FIELD>, Helm's `config`): its config class.
SETTINGS = {**CORE_SECTIONS, **{s.name: s.config_type for s in STAGES}}


def stage_class(name: str) -> type[Stage]:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ValueError(f"no stage {name!r} (stages: {', '.join(NAMES)})")
