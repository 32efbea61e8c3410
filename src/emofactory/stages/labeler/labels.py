"""The labeler on one video's evidence: audio and text scores from their models, then a fused
label per segment with its reasons, held to the thresholds, with the neutral share applied."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emofactory.core.backend import ModelBackend
from emofactory.core.emotions import CANONICAL, emotion_enum, emotion_name, mapping_matrix, scores_message
from emofactory.core.errors import PermanentError
from emofactory.models.ser_cnn import CLASSES as SER_CLASSES
from emofactory.stages.labeler.config import LabelerConfig
from emofactory.stages.labeler.fusion import logit_fusion, logits_from_probs, merge_logits, sigmoid, softmax, vote_label
from emofactory.v1 import common_pb2, labeler_pb2

NEUTRAL = CANONICAL.index("neutral")
# RAVDESS's eight classes onto the canonical seven: calm is a kind of neutral.
SER_TO_CANONICAL = mapping_matrix(
    SER_CLASSES,
    {
        "neutral": "neutral",
        "calm": "neutral",
        "happy": "happiness",
        "sad": "sadness",
        "angry": "anger",
        "fearful": "fear",
        "disgust": "disgust",
        "surprised": "surprise",
    },
)
AUDIO_MODEL = "ser-cnn-ravdess"


@dataclass
class Modalities:
    """Canonical logits per modality of one segment, and why a modality is missing."""

    logits: dict[str, np.ndarray]
    missing: dict[str, str]
    text_model: str = "minilm-zero-shot"


def scores_logits(scores: common_pb2.EmotionScores) -> np.ndarray | None:
    probs = np.array([getattr(scores, name) for name in CANONICAL])
    return logits_from_probs(probs) if probs.sum() > 0 else None


def audio_logits(
    backend: ModelBackend, pcm: np.ndarray | None, rate: int, segments: Sequence[common_pb2.Segment]
) -> tuple[list[np.ndarray | None], str]:
    """Canonical audio logits per segment (None where there is no audio), or the reason there are none."""
    if pcm is None:
        return [None] * len(segments), "no audio given"
    clips = [pcm[round(s.start_s * rate) : round(s.end_s * rate)].astype(np.float32) / 32768.0 for s in segments]
    present = [i for i, clip in enumerate(clips) if len(clip) >= rate // 10]
    out: list[np.ndarray | None] = [None] * len(segments)
    if not present:
        return out, ""
    try:
        # Clips differ in length: one request each, never padded to the longest.
        results = backend.infer_each("speech_emotion", [{"audio": clips[i][None]} for i in present])
    except PermanentError as exc:
        return out, str(exc)
    for i, result in zip(present, results):
        out[i] = merge_logits(result["logits"][0], SER_TO_CANONICAL)
    return out, ""


def text_logits(backend: ModelBackend, texts: Sequence[str]) -> list[np.ndarray | None]:
    present = [i for i, t in enumerate(texts) if t.strip()]
    out: list[np.ndarray | None] = [None] * len(texts)
    if present:
        batch = np.array([texts[i].encode() for i in present], dtype=object)
        for i, logits in zip(present, backend.infer("text_emotion", {"texts": batch})["logits"]):
            out[i] = np.asarray(logits, np.float64)
    return out


def _provenance(config: LabelerConfig, face_model: str, text_model: str) -> labeler_pb2.LabelProvenance:
    return labeler_pb2.LabelProvenance(
        face_model=face_model,
        audio_model=AUDIO_MODEL,
        text_model=text_model,
        strategy=config.strategy,
        modalities=config.modalities,
        fusion_lambda=config.fusion_lambda,
        min_face_ratio=config.min_face_ratio,
        max_text_neutral=config.max_text_neutral,
        max_audio_neutral=config.max_audio_neutral,
        neutral_share=config.neutral_share,
    )


def _probs_message(logits: np.ndarray | None, model: str) -> common_pb2.EmotionScores | None:
    return None if logits is None else scores_message(softmax(logits), model)


def label_one(
    evidence: labeler_pb2.SegmentEvidence, found: Modalities, config: LabelerConfig, excluded: str = ""
) -> labeler_pb2.SegmentLabel:
    """The label of one segment before the neutral share is applied; `excluded` is why an earlier
    stage dropped the segment (it is then never kept)."""
    out = labeler_pb2.SegmentLabel(segment_id=evidence.segment.segment_id, face_ratio=evidence.face_ratio)
    out.provenance.CopyFrom(_provenance(config, evidence.face.model, found.text_model))
    for name, model in (("face", evidence.face.model), ("audio", AUDIO_MODEL), ("text", found.text_model)):
        message = _probs_message(found.logits.get(name), model)
        if message is not None:
            getattr(out, name).CopyFrom(message)
    if "text" in found.logits:
        out.text_neutral = sigmoid(found.logits["text"][NEUTRAL])
    if "audio" in found.logits:
        out.audio_neutral = sigmoid(found.logits["audio"][NEUTRAL])
    label, reasons = out.label, []
    label.strategy = config.strategy
    if config.strategy == "vote":
        vote = CANONICAL.index(emotion_name(evidence.face_vote)) if evidence.face_vote else -1
        kept, why = vote_label(vote, found.logits.get("audio"))
        label.emotion = emotion_enum(vote)
        label.confidence = float(softmax(found.logits["face"])[vote]) if vote >= 0 and "face" in found.logits else 0.0
        out.agreement = kept
        reasons.append(why)
    else:
        used = {m: found.logits[m] for m in config.modalities if m in found.logits}
        reasons += [f"{m} missing: {found.missing.get(m, 'no scores')}" for m in config.modalities if m not in used]
        if not used:
            label.kept, label.reasons[:] = False, reasons + ["no modality to fuse"] + ([excluded] if excluded else [])
            return out
        fused = logit_fusion(used, config.fusion_lambda, config.temperatures)
        out.fused_scores[:] = fused.scores.tolist()
        out.agreement = fused.agreement
        label.emotion, label.confidence = emotion_enum(fused.emotion), fused.confidence
        label.fusion_score = fused.fusion_score
        kept = True
        if len(used) < config.min_modalities:
            kept = False
            reasons.append(f"only {', '.join(used)}: fewer modalities than min_modalities {config.min_modalities}")
        if config.require_agreement and not fused.agreement:
            kept = False
            reasons.append("modalities disagree on the top class")
        if fused.emotion != NEUTRAL:
            for name, limit in (("text", config.max_text_neutral), ("audio", config.max_audio_neutral)):
                level = out.text_neutral if name == "text" else out.audio_neutral
                if name in used and level >= limit:
                    kept = False
                    reasons.append(f"{name} neutral σ(l) {level:.3f} ≥ {limit}")
    if evidence.face_ratio < config.min_face_ratio:
        kept = False
        reasons.append(f"face presence {evidence.face_ratio:.2f} < {config.min_face_ratio}")
    if excluded:
        kept = False
        reasons.append(excluded)
    label.kept = kept
    if kept:
        reasons.append("passes every filter")
    label.reasons[:] = reasons
    return out


def apply_neutral_share(labels: list[labeler_pb2.SegmentLabel], share: float) -> None:
    """Keeps the most confident neutral labels, up to `share` per kept non-neutral label."""
    neutral = common_pb2.EMOTION_NEUTRAL
    others = sum(1 for x in labels if x.label.kept and x.label.emotion != neutral)
    allowed = math.ceil(share * others - 1e-9)
    candidates = sorted(
        (x for x in labels if x.label.kept and x.label.emotion == neutral),
        key=lambda x: (-x.label.confidence, x.segment_id),
    )
    for extra in candidates[allowed:]:
        extra.label.kept = False
        extra.label.reasons[-1:] = [f"neutral beyond the share ({allowed} for {others} non-neutral labels)"]


def label_segments(
    evidence: Sequence[labeler_pb2.SegmentEvidence],
    pcm: np.ndarray | None,
    rate: int,
    config: LabelerConfig,
    backend: ModelBackend,
    excluded: dict[str, str] | None = None,
    text_model: str = "minilm-zero-shot",
) -> list[labeler_pb2.SegmentLabel]:
    """Labels in the order of `evidence`. `excluded` rejects segments an earlier stage dropped
    (segment id -> reason), before the neutral share is counted."""
    audio, audio_missing = audio_logits(backend, pcm, rate, [e.segment for e in evidence])
    texts = text_logits(backend, [e.transcript for e in evidence])
    labels = []
    for e, a, t in zip(evidence, audio, texts):
        found = Modalities({}, {}, text_model)
        for name, given, computed, reason in (
            ("face", e.face if e.HasField("face") else None, None, "no face frames"),
            ("audio", e.audio if e.HasField("audio") else None, a, audio_missing or "segment too short"),
            ("text", e.text if e.HasField("text") else None, t, "no transcript"),
        ):
            logits = scores_logits(given) if given is not None else computed
            if logits is not None:
                found.logits[name] = logits
            else:
                found.missing[name] = reason
        labels.append(label_one(e, found, config, (excluded or {}).get(e.segment.segment_id, "")))
    apply_neutral_share(labels, config.neutral_share)
    return labels
