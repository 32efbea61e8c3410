"""Fusion judged on face and speech files paired by their label.

Acted corpora are recorded one modality at a time: of the test assets' 97 labelled files, 39 show a face
and 64 carry speech, but only 6 hold both, too few to judge a fusion rule or its filters. Late fusion
works on each modality's probabilities alone, so where a clip's modalities err independently given its
emotion, a face file and a speech file acted with the same emotion stand in for one audio-visual clip.
Every face file is paired with every speech file of the same label (never with itself), and each pair is
labelled by the labeler stage itself (`label_of_probabilities`) under the job's config, its face
presence taken as full.

These figures estimate; they do not replace real audio-visual clips (`fused (av)`): the pairs are not
independent samples (each file recurs in several), and in a real clip the modalities are correlated
(an actor's intensity shows in face and voice alike)."""

from __future__ import annotations

from collections.abc import Sequence

from emofactory.core.emotions import emotion_name
from emofactory.evaluation.metrics import Prediction
from emofactory.pipeline import stage_class

SPEECH = ("audio", "text")  # the modalities a speech file gives


def _probs(row: dict, modality: str) -> list[float] | None:
    return row.get(modality, {}).get("probs")


def paired_rows(rows: Sequence[dict]) -> list[dict]:
    """Rows of an eval report's files (path, label, speaker, per modality its probs) -> one row per
    (face file, speech file) of the same label: the face's scores and the speech file's audio and text,
    its speaker the speech file's (the one a held-out fit leaves out)."""
    faces = [r for r in rows if _probs(r, "face") is not None]
    speech = [r for r in rows if any(_probs(r, m) is not None for m in SPEECH)]
    pairs = []
    for f in faces:
        for s in speech:
            if s["label"] != f["label"] or s["path"] == f["path"]:
                continue
            pair = {"path": f"{f['path']} + {s['path']}", "label": s["label"], "speaker": s.get("speaker") or ""}
            pair["face"] = {"probs": _probs(f, "face")}
            pair |= {m: {"probs": _probs(s, m)} for m in SPEECH if _probs(s, m) is not None}
            pairs.append(pair)
    return pairs


def pair_predictions(pairs: Sequence[dict], config) -> list[Prediction]:
    """What the labeler says of each pair under its config (the labeler stage's): its fused label,
    confidence and whether it is kept."""
    labeler, out = stage_class("labeler"), []
    for pair in pairs:
        given = {m: pair[m]["probs"] for m in ("face", *SPEECH) if m in pair}
        label = labeler.label_of_probabilities(given, config)
        out.append(Prediction(pair["label"], emotion_name(label.emotion), label.confidence, label.kept))
    return out
