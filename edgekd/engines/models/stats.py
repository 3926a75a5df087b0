"""Parameter and multiply-add counts of a torch model at its input size."""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int) -> int | None:
    """Multiply-adds for one image (FLOPs ≈ 2 × MACs), via torch-pruning's op counter."""
    import torch_pruning as tp

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        macs, _ = tp.utils.count_ops_and_params(model, torch.zeros(1, 3, input_size, input_size, device=device))
        return int(macs)
    except Exception as exc:  # the counter traces the model; exotic layers can trip it
        log.warning("could not count MACs (%s)", exc)
        return None
    finally:
        model.train(was_training)


def model_stats(model: nn.Module, input_size: int) -> dict[str, float | int | None]:
    macs = count_macs(model, input_size)
    return {
        "params": count_params(model),
        "params_m": round(count_params(model) / 1e6, 4),
        "macs": macs,
        "macs_m": round(macs / 1e6, 3) if macs is not None else None,
    }
