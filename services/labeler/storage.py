"""The labeler on stored objects: the video's WAV for the audio model, labels stored as JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.json_format import MessageToDict

from services.common.backend import ModelBackend
from services.common.config import config_digest
from services.common.gen.emofactory.v1 import common_pb2, labeler_pb2
from services.common.media import read_pcm
from services.common.service import Runtime
from services.common.store import object_key
from services.labeler.config import LabelerConfig
from services.labeler.stage import label_segments


def labels_document(video_id: str, config: LabelerConfig, labels) -> bytes:
    doc = {
        "video_id": video_id,
        "config": dataclasses.asdict(config),
        "kept": sum(x.label.kept for x in labels),
        "labels": [MessageToDict(x, preserving_proto_field_name=True) for x in labels],
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False).encode()


async def label_stored_segments(
    rt: Runtime,
    backend: ModelBackend,
    audio: common_pb2.ObjectRef | None,
    video_id: str,
    evidence: Sequence[labeler_pb2.SegmentEvidence],
    config: LabelerConfig,
    excluded: dict[str, str] | None = None,
    text_model: str = "minilm-zero-shot",
) -> tuple[list[labeler_pb2.SegmentLabel], common_pb2.ObjectRef]:
    pcm, rate = None, 16000
    if audio is not None and audio.key:
        with tempfile.TemporaryDirectory(dir=rt.work_dir) as tmp:
            wav = await asyncio.to_thread(rt.store.get_file, audio, Path(tmp) / "audio.wav")
            pcm, rate = await asyncio.to_thread(read_pcm, wav)
    labels = await asyncio.to_thread(label_segments, list(evidence), pcm, rate, config, backend, excluded, text_model)
    key = object_key(video_id, "labeler", config_digest(config), "labels.json")
    ref = await asyncio.to_thread(
        rt.store.put_bytes, key, labels_document(video_id, config, labels), "application/json"
    )
    return labels, ref
