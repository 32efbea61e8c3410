"""Training a baseline (`emofactory.models.baseline`: standardised input, one hidden layer, seven
canonical classes) on one modality's features: full-batch, class-weighted cross-entropy, Adam, early
stopping on the validation split's unweighted average recall (its loss breaking ties, as a small
validation split soon reaches its best UAR); deterministic for a seed. Saved as a folder (the card,
`baseline.json`: modality, features, classes, the release it learned from; `model.pt`, the weights),
which the labeler loads by path like any model."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emofactory.core.classes import CANONICAL
from emofactory.models.baseline import CARD, FORMAT, WEIGHTS, Baseline


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = 64
    dropout: float = 0.2
    lr: float = 3e-3
    weight_decay: float = 1e-3
    max_epochs: int = 400
    # Epochs without a better validation UAR before training stops (the best epoch's weights are kept).
    patience: int = 40
    seed: int = 0

    def check(self) -> None:
        if not (1 <= self.hidden <= 4096 and 0 <= self.dropout < 1 and 1 <= self.max_epochs <= 100_000):
            raise ValueError("hidden 1-4096, dropout in [0, 1), max_epochs 1-100000")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1 and 0 <= self.weight_decay <= 1 and self.patience >= 1):
            raise ValueError("lr in (0, 1], weight_decay in [0, 1], patience >= 1")


def uar(logits: torch.Tensor, y: torch.Tensor) -> float:
    predicted = logits.argmax(1)
    recalls = [(predicted[y == c] == c).float().mean().item() for c in y.unique()]
    return float(np.mean(recalls)) if recalls else 0.0


def fit(x_train, y_train, x_val, y_val, config: TrainConfig) -> tuple[Baseline, list[dict]]:
    """The model at its best validation epoch, and each epoch's loss and validation UAR. Labels are
    canonical class indices; without validation clips the training split stands in."""
    config.check()
    torch.manual_seed(config.seed)
    xt, yt = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train, dtype=torch.long)
    xv, yv = (xt, yt) if len(y_val) == 0 else (torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val))
    model = Baseline(xt.shape[1], config.hidden, config.dropout)
    model.mean.copy_(xt.mean(0))
    model.std.copy_(xt.std(0, unbiased=False).clamp_min(1e-6))
    counts = torch.bincount(yt, minlength=len(CANONICAL)).float()
    weights = torch.where(counts > 0, counts.sum() / (counts.clamp_min(1) * (counts > 0).sum()), torch.zeros(1))
    loss_of = nn.CrossEntropyLoss(weight=weights)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best, best_state, since, history = (-1.0, 0.0), None, 0, []
    for epoch in range(config.max_epochs):
        model.train()
        optimiser.zero_grad()
        loss = loss_of(model(xt), yt)
        loss.backward()
        optimiser.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            score = (uar(logits, yv), -nn.functional.cross_entropy(logits, yv).item())  # UAR, then loss
        history.append({"epoch": epoch, "loss": round(loss.item(), 5), "validation_uar": round(score[0], 5)})
        if score > best:
            best, best_state, since = score, {k: v.clone() for k, v in model.state_dict().items()}, 0
        elif (since := since + 1) >= config.patience:
            break
    model.load_state_dict(best_state)
    return model.eval(), history


def save(model: Baseline, folder: Path, card: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHTS)
    card = {"format": FORMAT, "classes": list(CANONICAL), "inputs": int(model.mean.shape[0]), **card}
    (folder / CARD).write_text(json.dumps(card, indent=1, sort_keys=True))
    return folder


def train_card(config: TrainConfig) -> dict:
    return {"train": asdict(config)}
