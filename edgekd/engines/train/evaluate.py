"""Accuracy of a torch model on a data bundle's validation split."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from edgekd.core import dist
from edgekd.engines.data.bundle import Data


@contextmanager
def full_fp32() -> Iterator[None]:
    """CUDA convolutions in IEEE FP32 instead of TF32 (PyTorch's cuDNN default).

    Why: reported accuracies are FP32 accuracies, compared with the exported ONNX/OpenVINO
    models. With TF32 an H100 run of the test suite reported a 54%-accurate student at
    53.76% in PyTorch and 53.48% in ONNX Runtime: borderline logits flipped.
    """
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def eval_batch_size(image_size: int) -> int:
    """512 images at 32 px; fewer at real resolution, so a batch's float input stays near 32 MB
    (512 at 224 px would hold 300 MB of input and gigabytes of activations)."""
    return max(32, min(512, 2**23 // (3 * image_size * image_size)))


@torch.no_grad()
def predict(model: nn.Module, data: Data, device: torch.device, batch_size: int | None = None,
            limit: int | None = None, shard: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits on the first ``limit`` validation images (this rank's batches with ``shard``),
    and those images' labels (CPU)."""
    batch_size = batch_size or eval_batch_size(data.image_size)
    was_training = model.training
    model.eval()
    outs, labels = [], []
    with full_fp32():
        for xb, yb in data.val_batches(batch_size, limit, shard=shard):
            outs.append(model(data.normalize(xb.to(device))).float().cpu())
            labels.append(yb.cpu())
    model.train(was_training)
    if not outs:  # a rank whose share of a small validation set is empty
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(outs), torch.cat(labels)


def predict_logits(model: nn.Module, data: Data, device: torch.device, batch_size: int | None = None,
                   limit: int | None = None) -> torch.Tensor:
    return predict(model, data, device, batch_size, limit)[0]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(1).cpu() == targets.cpu()).float().mean() * 100.0)


def evaluate(model: nn.Module, data: Data, device: torch.device, batch_size: int | None = None) -> float:
    """Top-1 on the validation split; under torchrun each rank predicts its share of the batches
    and the counts are summed, so every rank gets the number one process would."""
    w = dist.world()
    if not w.active:
        return accuracy(*predict(model, data, device, batch_size))
    logits, labels = predict(model, data, device, batch_size, shard=(w.rank, w.size))
    correct = float((logits.argmax(1) == labels).sum()) if labels.numel() else 0.0
    hits, total = dist.sum_all([correct, float(labels.numel())], device if w.backend == "nccl" else "cpu")
    return float(torch.tensor(hits / max(total, 1.0) * 100.0, dtype=torch.float32))
