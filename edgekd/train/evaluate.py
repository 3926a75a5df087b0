"""Accuracy of a torch model on a data bundle's validation split."""

from __future__ import annotations

import torch
from torch import nn

from edgekd.data.bundle import DataBundle


@torch.no_grad()
def predict_logits(model: nn.Module, data: DataBundle, device: torch.device, batch_size: int = 512, limit: int | None = None) -> torch.Tensor:
    was_training = model.training
    model.eval()
    xs = data.val_x if limit is None else data.val_x[:limit]
    outs = []
    for i in range(0, xs.shape[0], batch_size):
        xb = data.normalize(xs[i : i + batch_size].to(device))
        outs.append(model(xb).float().cpu())
    model.train(was_training)
    return torch.cat(outs)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(1).cpu() == targets.cpu()).float().mean() * 100.0)


def evaluate(model: nn.Module, data: DataBundle, device: torch.device, batch_size: int = 512) -> float:
    return accuracy(predict_logits(model, data, device, batch_size), data.val_y)
