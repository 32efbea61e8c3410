"""Label fusion math on the canonical seven classes, as pure functions of logits.

logit_fusion (seed 003 §3.2, eq. 5-10): P̃m = softmax(Lm / Tm); S(e) = Σm log P̃m(e) − λ·KL(P̃t‖P̃a);
e* = argmax S; the seed's F = σ(S(e*)) (its fusion score); agreement: argmax Lt == argmax La.
Generalized to any set of modalities: the penalty sums KL(P̃i‖P̃j) over the pairs (i, j) taken in
the order text, audio, face, so that text + audio is exactly the seed's formula.

F is a ranking score, not a probability (two modalities both at 0.97 give F = 0.48, and it can never
exceed 0.5 there). The label's confidence is the posterior softmax(S)(e*): the KL penalty is the same
for every e, so it is the normalised product Πm P̃m(e) — each modality's evidence combined as
independent — which lies in [0, 1] and means what it says once the temperatures Tm (1: the models'
own scale) are fitted on labelled data.

vote (seed 002 §3.4-3.5): the face's majority vote, kept only where the audio model's top class
agrees."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

ORDER = ("text", "audio", "face")  # KL pairs are (earlier, later) in this order
EPS = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, np.float64) - np.max(logits)
    e = np.exp(shifted)
    return e / e.sum()


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) in nats."""
    p = np.clip(np.asarray(p, np.float64), EPS, 1.0)
    q = np.clip(np.asarray(q, np.float64), EPS, 1.0)
    return float(np.sum(p * np.log(p / q)))


def logits_from_probs(probs: np.ndarray) -> np.ndarray:
    """Logits whose softmax is `probs` (for models, such as the face's frame mean, that give probabilities)."""
    return np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0))


@dataclass(frozen=True)
class Fused:
    scores: np.ndarray  # S(e), canonical order
    emotion: int  # e*
    confidence: float  # softmax(S)(e*): the posterior of e*
    fusion_score: float  # σ(S(e*)), seed 003's F
    agreement: bool  # every modality's top class is e*... of its own logits, all equal
    penalty: float  # λ·Σ KL


def logit_fusion(
    logits: Mapping[str, np.ndarray], lam: float = 0.5, temperatures: Mapping[str, float] | None = None
) -> Fused:
    if not logits:
        raise ValueError("logit fusion needs at least one modality")
    names = sorted(logits, key=ORDER.index)
    probs = {m: softmax(np.asarray(logits[m], np.float64) / (temperatures or {}).get(m, 1.0)) for m in names}
    penalty = lam * sum(kl(probs[a], probs[b]) for a, b in combinations(names, 2))
    scores = sum(np.log(np.clip(probs[m], EPS, 1.0)) for m in names) - penalty
    best = int(np.argmax(scores))
    tops = {int(np.argmax(logits[m])) for m in names}
    return Fused(scores, best, float(softmax(scores)[best]), sigmoid(scores[best]), len(tops) == 1, penalty)


def vote_label(face_vote: int, audio_logits: np.ndarray | None) -> tuple[bool, str, str]:
    """(kept, reason code, why) of the face's vote under seed 002's audio check."""
    if face_vote < 0:
        return False, "no_face_vote", "no face vote"
    if audio_logits is None:
        return False, "no_audio_vote", "no audio scores to confirm the face vote"
    if int(np.argmax(audio_logits)) != face_vote:
        return False, "audio_disagrees", "audio model disagrees with the face vote"
    return True, "audio_agrees", "audio model agrees with the face vote"
