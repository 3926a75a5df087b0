"""Re-applying a recorded channel pruning to a freshly built base architecture."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def replay_pruning(model: nn.Module, history: list[Any], example_input: torch.Tensor) -> nn.Module:
    """Prune ``model`` in place to the shapes ``history`` records.

    ``history`` is torch-pruning's ``pruner.pruning_history()``: plain [layer name,
    is-output-channel, indices] triples, JSON-safe. The dependency graph replays them so
    coupled layers (residual adds, depthwise convs, BatchNorm) shrink together.
    """
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    graph.load_pruning_history(history)
    return model
