"""MTCNN face detection (Zhang et al., 2016) from facenet-pytorch, with the P/R/O-Net weights its
wheel ships. facenet-pytorch imports torchvision for two helpers only (batched NMS and to_tensor);
there is no CPU torchvision build to install beside torch 2.13, so a scoped stand-in provides them
while facenet-pytorch is imported and is removed right after."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import torch

_import_lock = threading.Lock()


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's semantics: indices of kept boxes, by score."""
    order = torch.argsort(scores, descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty(0, dtype=torch.long)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each group of `idxs`: boxes of different groups are shifted apart so they never overlap."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _to_tensor(image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy() / 255.0)


def _import_facenet_mtcnn():
    names = ("torchvision", "torchvision.ops", "torchvision.ops.boxes", "torchvision.transforms")
    names += ("torchvision.transforms.functional",)
    with _import_lock:
        if "facenet_pytorch.models.mtcnn" in sys.modules:
            return sys.modules["facenet_pytorch.models.mtcnn"]
        shims = {name: types.ModuleType(name) for name in names if name not in sys.modules}
        if "torchvision.ops.boxes" in shims:
            shims["torchvision.ops.boxes"].batched_nms = batched_nms
        if "torchvision.transforms.functional" in shims:
            shims["torchvision.transforms.functional"].to_tensor = _to_tensor
            shims["torchvision.transforms"].functional = shims["torchvision.transforms.functional"]
        sys.modules.update(shims)
        try:
            from facenet_pytorch.models import mtcnn
        finally:
            for name in shims:
                sys.modules.pop(name, None)
        return mtcnn


class FaceDetector:
    """Faces in a batch of same-sized RGB frames: boxes [N, K, 4] (x1, y1, x2, y2 in the frames'
    pixels), scores [N, K] and MTCNN's five landmarks [N, K, 5, 2] (eyes, nose, mouth corners; x, y),
    zero-padded to the most faces any frame has."""

    def __init__(self, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7), device: str = "cpu"):
        mtcnn = _import_facenet_mtcnn()
        self.model = mtcnn.MTCNN(
            keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds), device=device
        ).eval()

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [N, H, W, 3], not {images.dtype} {list(images.shape)}")
        batch_boxes, batch_probs, batch_points = self.model.detect(images, landmarks=True)
        per_frame = [
            (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
            if b is None
            else tuple(np.asarray(x, dtype=np.float32) for x in (b, p, q))
            for b, p, q in zip(batch_boxes, batch_probs, batch_points)
        ]
        most = max((len(p) for _, p, _ in per_frame), default=0)
        boxes = np.zeros((len(images), most, 4), np.float32)
        scores = np.zeros((len(images), most), np.float32)
        points = np.zeros((len(images), most, 5, 2), np.float32)
        for i, (b, p, q) in enumerate(per_frame):
            n = len(p)
            boxes[i, :n], scores[i, :n], points[i, :n] = b.reshape(n, 4), p.reshape(n), q.reshape(n, 5, 2)
        return {"boxes": boxes, "scores": scores, "landmarks": points}
