"""What each baseline learns from, computed offline from a release folder's media and records:
audio, MFCC statistics of the clip's WAV; text, the transcript's MiniLM sentence embedding; face,
mini-XCEPTION's penultimate layer (its 128 channels, pooled) on the largest face MTCNN finds in the
clip's representative frame. A clip without the modality (no WAV, no transcript, no face) has no
row for it: its `present` flag is false."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emofactory.core.media import read_pcm
from emofactory.core.mfcc import librosa_mfcc

MODALITIES = ("audio", "face", "text")
AUDIO_RATE = 16000
N_MFCC = 40
FACE_MARGIN, FACE_SIZE = 0.1, 112


def audio_vector(samples: np.ndarray, rate: int) -> np.ndarray:
    """[80]: each MFCC's mean and standard deviation over the clip (float samples in [-1, 1])."""
    x = np.asarray(samples, np.float32)
    if rate != AUDIO_RATE:
        import soxr

        x = soxr.resample(x, rate, AUDIO_RATE, "HQ")
    mfcc = librosa_mfcc(x, AUDIO_RATE, N_MFCC)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


def audio_features(paths: Sequence[Path | None]) -> tuple[np.ndarray, np.ndarray]:
    rows, present = [], []
    for path in paths:
        if path is None or not path.is_file():
            rows.append(np.zeros(2 * N_MFCC, np.float32))
            present.append(False)
            continue
        pcm, rate = read_pcm(path)
        rows.append(audio_vector(pcm.astype(np.float32) / 32768.0, rate))
        present.append(len(pcm) > 0)
    return np.stack(rows), np.array(present, bool)


def text_features(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    from sentence_transformers import SentenceTransformer

    from emofactory.models.text_emotion import bundled_model_path

    encoder = SentenceTransformer(str(bundled_model_path()), device="cpu")
    vectors = encoder.encode([t or "" for t in texts], batch_size=64, normalize_embeddings=True)
    return np.asarray(vectors, np.float32), np.array([bool(t and t.strip()) for t in texts], bool)


def face_features(frames: Sequence[Path | None]) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from PIL import Image

    from emofactory.models.info import bundled_mini_xception
    from emofactory.models.mini_xception import load_mini_xception, prepare
    from emofactory.models.mtcnn import FaceDetector
    from emofactory.stages.vision.faces import square_crop

    detector, fer = FaceDetector(), load_mini_xception(bundled_mini_xception()).eval()
    rows, present = [], []
    for path in frames:
        crop = None
        if path is not None and path.is_file():
            image = np.asarray(Image.open(path).convert("RGB"))
            found = detector(image[None])
            if found["scores"].shape[1] and found["scores"][0].max() > 0:
                boxes = found["boxes"][0][found["scores"][0] > 0]
                largest = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
                crop = square_crop(image, largest, FACE_MARGIN, FACE_SIZE)
        if crop is None:
            rows.append(np.zeros(128, np.float32))
            present.append(False)
            continue
        with torch.inference_mode():
            rows.append(penultimate(fer, torch.from_numpy(prepare(crop[None])))[0].numpy())
        present.append(True)
    return np.stack(rows), np.array(present, bool)


def penultimate(model, x):
    """mini-XCEPTION's last residual block, pooled: [N, 128]."""
    import torch.nn.functional as F

    x = F.relu(model.bn1(model.conv1(x)))
    x = F.relu(model.bn2(model.conv2(x)))
    for block in model.blocks:
        x = block(x)
    return x.mean(dim=(2, 3))


def release_features(root: Path, records: Sequence[dict], modality: str) -> tuple[np.ndarray, np.ndarray]:
    """[clips, d] features of one modality for a release's records, and which clips have it."""
    media = [r.get("media", {}) for r in records]
    if modality == "audio":
        return audio_features([root / m["wav"] if "wav" in m else None for m in media])
    if modality == "face":
        return face_features([root / m["jpg"] if "jpg" in m else None for m in media])
    if modality == "text":
        return text_features([r.get("transcript", "") for r in records])
    raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
