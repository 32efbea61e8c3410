"""The labeler on one video's evidence: audio and text scores from their models, then a fused
label per segment with its reasons, held to the thresholds, with the neutral share applied."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from emofactory.core.backend import ModelBackend
from emofactory.core.emotions import CANONICAL, emotion_enum, emotion_name, scores_message
from emofactory.core.errors import PermanentError
from emofactory.stages.labeler.config import LabelerConfig
from emofactory.stages.labeler.fusion import logit_fusion, logits_from_probs, sigmoid, softmax, vote_label
from emofactory.v1 import common_pb2, labeler_pb2

NEUTRAL = CANONICAL.index("neutral")


@dataclass
class Modalities:
    """Canonical logits per modality of one segment, why a modality is missing, and each model's name."""

    logits: dict[str, np.ndarray]
    missing: dict[str, str]
    models: dict[str, str] = field(default_factory=dict)


def scores_logits(scores: common_pb2.EmotionScores) -> np.ndarray | None:
    probs = np.array([getattr(scores, name) for name in CANONICAL])
    return logits_from_probs(probs) if probs.sum() > 0 else None


def audio_clips(
    pcm: np.ndarray, rate: int, segments: Sequence[common_pb2.Segment], context_s: float
) -> list[np.ndarray]:
    """Each segment's samples, widened by `context_s` either side (within the track), as floats."""
    pad = context_s * rate
    return [
        pcm[max(0, round(s.start_s * rate - pad)) : round(s.end_s * rate + pad)].astype(np.float32) / 32768.0
        for s in segments
    ]


def audio_logits(
    backend: ModelBackend, pcm: np.ndarray | None, rate: int, segments: Sequence[common_pb2.Segment], context_s: float
) -> tuple[list[np.ndarray | None], str]:
    """Canonical audio logits per segment (None where there is no audio), or the reason there are none."""
    if pcm is None:
        return [None] * len(segments), "no audio given"
    clips = audio_clips(pcm, rate, segments, context_s)
    present = [i for i, (s, clip) in enumerate(zip(segments, clips)) if s.end_s - s.start_s >= 0.1 and len(clip)]
    out: list[np.ndarray | None] = [None] * len(segments)
    if not present:
        return out, ""
    rate_tensor = np.array([[rate]], np.int32)
    try:
        # Clips differ in length: one request each, never padded to the longest.
        each = [{"audio": clips[i][None], "sample_rate": rate_tensor} for i in present]
        results = backend.infer_each("speech_emotion", each)
    except PermanentError as exc:
        return out, str(exc)
    for i, result in zip(present, results):
        out[i] = logits_from_probs(result["probabilities"][0])
    return out, ""


def text_logits(backend: ModelBackend, texts: Sequence[str]) -> list[np.ndarray | None]:
    present = [i for i, t in enumerate(texts) if t.strip()]
    out: list[np.ndarray | None] = [None] * len(texts)
    if present:
        batch = np.array([texts[i].encode() for i in present], dtype=object)
        for i, probs in zip(present, backend.infer("text_emotion", {"texts": batch})["probabilities"]):
            out[i] = logits_from_probs(probs)
    return out


def _provenance(config: LabelerConfig, face_model: str, models: dict[str, str]) -> labeler_pb2.LabelProvenance:
    return labeler_pb2.LabelProvenance(
        face_model=face_model,
        audio_model=models.get("audio", ""),
        text_model=models.get("text", ""),
        strategy=config.strategy,
        modalities=config.modalities,
        fusion_lambda=config.fusion_lambda,
        min_face_ratio=config.min_face_ratio,
        max_text_neutral=config.max_text_neutral,
        max_audio_neutral=config.max_audio_neutral,
        neutral_share=config.neutral_share,
        min_modalities=config.min_modalities,
        single_min_confidence=config.single_min_confidence,
    )


def _probs_message(logits: np.ndarray | None, model: str) -> common_pb2.EmotionScores | None:
    return None if logits is None else scores_message(softmax(logits), model)


def _scores(out: labeler_pb2.SegmentLabel, found: Modalities, face_model: str) -> None:
    models = {**found.models, "face": face_model}
    for name in ("face", "audio", "text"):
        message = _probs_message(found.logits.get(name), models.get(name, ""))
        if message is not None:
            getattr(out, name).CopyFrom(message)
    if "text" in found.logits:
        out.text_neutral = sigmoid(found.logits["text"][NEUTRAL])
    if "audio" in found.logits:
        out.audio_neutral = sigmoid(found.logits["audio"][NEUTRAL])


def _fused_checks(out: labeler_pb2.SegmentLabel, found: Modalities, config: LabelerConfig) -> list[tuple[str, str]]:
    """Fuses the job's modalities into out.label; (code, why) of each check it fails."""
    label = out.label
    used = {m: found.logits[m] for m in config.modalities if m in found.logits}
    reasons = [
        ("modality_missing", f"{m} missing: {found.missing.get(m, 'no scores')}")
        for m in config.modalities
        if m not in used
    ]
    if not used:
        return reasons + [("no_modality", "no modality to fuse")]
    fused = logit_fusion(used, config.fusion_lambda, config.temperatures)
    out.fused_scores[:] = fused.scores.tolist()
    out.agreement = fused.agreement
    label.emotion, label.confidence = emotion_enum(fused.emotion), fused.confidence
    label.fusion_score = fused.fusion_score
    if len(used) < config.min_modalities:
        reasons.append(
            (
                "too_few_modalities",
                f"only {', '.join(used)}: fewer modalities than min_modalities {config.min_modalities}",
            )
        )
    elif len(used) == 1 and fused.confidence < config.single_min_confidence:
        reasons.append(
            (
                "single_unsure",
                f"{next(iter(used))} alone at confidence {fused.confidence:.2f} < {config.single_min_confidence}",
            )
        )
    if config.require_agreement and not fused.agreement:
        reasons.append(("modalities_disagree", "modalities disagree on the top class"))
    if fused.emotion != NEUTRAL:
        for name, limit in (("text", config.max_text_neutral), ("audio", config.max_audio_neutral)):
            level = out.text_neutral if name == "text" else out.audio_neutral
            if name in used and level >= limit:
                reasons.append((f"{name}_neutral", f"{name} neutral σ(l) {level:.3f} ≥ {limit}"))
    return reasons


REJECTING = {"no_modality", "too_few_modalities", "single_unsure", "modalities_disagree", "text_neutral",
             "audio_neutral", "face_presence_low", "excluded", "no_face_vote", "no_audio_vote",
             "audio_disagrees"}  # fmt: skip


def label_one(
    evidence: labeler_pb2.SegmentEvidence, found: Modalities, config: LabelerConfig, excluded: str = ""
) -> labeler_pb2.SegmentLabel:
    """The label of one segment before the neutral share is applied; `excluded` is why an earlier
    stage dropped the segment (it is then never kept). Each reason has a stable code (reason_codes,
    same order): modality_missing, no_modality, too_few_modalities, single_unsure, modalities_disagree,
    text_neutral, audio_neutral, face_presence_low, excluded, neutral_share, vote codes, kept."""
    out = labeler_pb2.SegmentLabel(segment_id=evidence.segment.segment_id, face_ratio=evidence.face_ratio)
    out.provenance.CopyFrom(_provenance(config, evidence.face.model, found.models))
    _scores(out, found, evidence.face.model)
    label = out.label
    label.strategy = config.strategy
    if config.strategy == "vote":
        vote = CANONICAL.index(emotion_name(evidence.face_vote)) if evidence.face_vote else -1
        kept, code, why = vote_label(vote, found.logits.get("audio"))
        label.emotion = emotion_enum(vote)
        label.confidence = float(softmax(found.logits["face"])[vote]) if vote >= 0 and "face" in found.logits else 0.0
        out.agreement = kept
        reasons = [(code, why)]
    else:
        reasons = _fused_checks(out, found, config)
    if evidence.face_ratio < config.min_face_ratio:
        reasons.append(("face_presence_low", f"face presence {evidence.face_ratio:.2f} < {config.min_face_ratio}"))
    if excluded:
        reasons.append(("excluded", excluded))
    label.kept = not any(code in REJECTING for code, _ in reasons)
    if label.kept:
        reasons.append(("kept", "passes every filter"))
    label.reason_codes[:] = [code for code, _ in reasons]
    label.reasons[:] = [why for _, why in reasons]
    return out


def label_of_probabilities(probabilities: Mapping[str, np.ndarray], config: LabelerConfig) -> common_pb2.Label:
    """One segment's label from each modality's canonical probabilities as given (its face presence
    full), before the neutral share, which is a chunk's: what the labeler says of scores alone."""
    found = Modalities({m: logits_from_probs(np.asarray(p, float)) for m, p in probabilities.items()}, {})
    return label_one(labeler_pb2.SegmentEvidence(face_ratio=1.0), found, config).label


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
        extra.label.reason_codes[-1:] = ["neutral_share"]


def _face_scores(evidence: labeler_pb2.SegmentEvidence, config: LabelerConfig):
    """The face's scores of a segment, or None and why there are none."""
    if not evidence.HasField("face"):
        return None, "no face frames"
    if config.face_needs_speaker and evidence.speaker_off_screen:
        return None, "off_screen_speaker: the visible face does not speak"
    return evidence.face, ""


def label_segments(
    evidence: Sequence[labeler_pb2.SegmentEvidence],
    pcm: np.ndarray | None,
    rate: int,
    config: LabelerConfig,
    backend: ModelBackend,
    excluded: dict[str, str] | None = None,
    models: dict[str, str] | None = None,
) -> list[labeler_pb2.SegmentLabel]:
    """Labels in the order of `evidence`. `excluded` rejects segments an earlier stage dropped
    (segment id -> reason), before the neutral share is counted; `models` names the audio and text
    models in the scores."""
    audio, audio_missing = audio_logits(backend, pcm, rate, [e.segment for e in evidence], config.audio_context_s)
    texts = text_logits(backend, [e.transcript for e in evidence])
    labels = []
    for e, a, t in zip(evidence, audio, texts):
        found = Modalities({}, {}, dict(models or {}))
        face, face_missing = _face_scores(e, config)
        for name, given, computed, reason in (
            ("face", face, None, face_missing),
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
