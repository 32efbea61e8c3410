"""Hugging Face `transformers` classification folders by path — audio (wav2vec2 / HuBERT / WavLM SER),
image (ViT-style face expression) and text (DistilRoBERTa emotion) — each run with the folder's own
feature extractor, image processor or tokenizer, and its classes (config.json id2label) mapped onto
the canonical seven by name. Loaded from disk only, never from the hub."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soxr
import torch

from emofactory.core.classes import canonical_matrix, to_canonical
from emofactory.models.info import hf_classes, hf_config


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


class Classifier:
    """A folder's model and preprocessor; `probabilities(**inputs)` in canonical order."""

    def __init__(self, folder: Path | str, model_class: str, processor_class: str, device: str = "cpu"):
        _offline()
        import transformers

        self.folder = Path(folder)
        self.processor = getattr(transformers, processor_class).from_pretrained(str(folder), local_files_only=True)
        model = getattr(transformers, model_class).from_pretrained(str(folder), local_files_only=True)
        self.model = model.to(device).eval()
        self.device = device
        self.matrix = canonical_matrix(hf_classes(self.folder), str(folder))
        self.multi_label = hf_config(self.folder).get("problem_type") == "multi_label_classification"

    @torch.inference_mode()
    def probabilities(self, **inputs) -> np.ndarray:
        logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits.float()
        # multi-label heads (GoEmotions) score each class apart: sigmoid, then shares
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return to_canonical(probs.cpu().numpy(), self.matrix)


def load_image_classifier(folder: Path | str, device: str = "cpu"):
    """faces uint8 [N, S, S, 3] RGB -> probabilities [N, 7]; the image processor resizes and normalises."""
    classifier = Classifier(folder, "AutoModelForImageClassification", "AutoImageProcessor", device)

    def run(inputs):
        faces = list(np.asarray(inputs["faces"], np.uint8))
        batch = classifier.processor(images=faces, return_tensors="pt")
        return {"probabilities": classifier.probabilities(**batch)}

    return run


def load_audio_classifier(folder: Path | str, device: str = "cpu"):
    """audio float32 [N, samples] at sample_rate [N, 1] -> probabilities [N, 7]: resampled to the
    feature extractor's rate, then its own normalisation."""
    classifier = Classifier(folder, "AutoModelForAudioClassification", "AutoFeatureExtractor", device)
    rate = int(classifier.processor.sampling_rate)

    def run(inputs):
        given = int(np.asarray(inputs["sample_rate"]).reshape(-1)[0])
        clips = [np.asarray(c, np.float32) for c in inputs["audio"]]
        clips = [soxr.resample(c, given, rate, "HQ") if given != rate else c for c in clips]
        batch = classifier.processor(clips, sampling_rate=rate, return_tensors="pt", padding=True)
        return {"probabilities": classifier.probabilities(**batch)}

    return run


def load_text_classifier(folder: Path | str, device: str = "cpu"):
    """texts bytes [N] -> probabilities [N, 7]; the folder's tokenizer, truncated to its limit."""
    classifier = Classifier(folder, "AutoModelForSequenceClassification", "AutoTokenizer", device)
    # some tokenizers leave model_max_length unset (1e30): the position embeddings are the limit
    limit = min(classifier.processor.model_max_length, getattr(classifier.model.config, "max_position_embeddings", 512))

    def run(inputs):
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in np.asarray(inputs["texts"]).reshape(-1)]
        batch = classifier.processor(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        return {"probabilities": classifier.probabilities(**batch)}

    return run
