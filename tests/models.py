"""Tiny randomly initialised models in the formats users bring, saved where a test says: a
transformers image-, audio- and text-classification folder, and an ONNX face classifier. Seeded, so
the same call saves the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

FACE_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # ViT face-expression order


def _labels(classes) -> dict:
    return {"id2label": dict(enumerate(classes)), "label2id": {c: i for i, c in enumerate(classes)}}


def _readme(folder: Path, licence: str) -> None:
    (folder / "README.md").write_text(f"---\nlicense: {licence}\ntags: [test]\n---\n# a tiny test model\n")


def tiny_image_classifier(folder: Path, classes=FACE_CLASSES) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, **_labels(classes))  # fmt: skip
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    _readme(folder, "mit")
    return folder


def tiny_audio_classifier(folder: Path, classes=("neu", "hap", "ang", "sad")) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_feat_extract_layers=2,
                            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, classifier_proj_size=8,
                            **_labels(classes))  # fmt: skip
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    _readme(folder, "apache-2.0")
    return folder


def tiny_text_classifier(folder: Path, classes=("joy", "anger", "neutral")) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "so", "happy", "sad"]))
    config = BertConfig(vocab_size=10, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, **_labels(classes))  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizer(str(vocab)).save_pretrained(folder)
    return folder


def onnx_face(path: Path, classes, size: int) -> tuple[Path, np.ndarray]:
    """An ONNX graph [N, 3, size, size] -> global average pool -> linear -> logits [N, classes];
    returns its path and the linear layer's weights [3, classes]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.RandomState(0).normal(0, 1, (3, len(classes))).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        ],
        "tiny_face",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", len(classes)])],
        [numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path, weights
