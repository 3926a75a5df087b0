"""Re-applying a recorded channel pruning to a freshly built base architecture."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgekd.engines.models.attention import channel_parameters, fixed_parameters, mend_attention

DROP = "drop"  # a history entry ["drop", block name]: the residual block replaced by its identity shortcut


def drop_block(model: nn.Module, name: str) -> None:
    """Replace the block ``name`` by the identity (its shortcut): the whole block is gone."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())


def replay_pruning(model: nn.Module, history: list[Any], example_input: torch.Tensor) -> nn.Module:
    """Prune ``model`` in place to the shapes ``history`` records.

    ``history`` is torch-pruning's ``pruner.pruning_history()``: plain [layer name,
    is-output-channel, indices] triples, JSON-safe. The dependency graph replays them so
    coupled layers (residual adds, depthwise convs, BatchNorm) shrink together. Entries
    ``["drop", block]`` (whole residual blocks removed, always recorded before the channel
    cuts of the same pruning) are applied first.
    """
    import torch_pruning as tp

    for entry in history:
        if len(entry) == 2 and entry[0] == DROP:
            drop_block(model, entry[1])
    channels = [e for e in history if not (len(e) == 2 and e[0] == DROP)]
    if channels:
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input,
                                                      unwrapped_parameters=channel_parameters(model),
                                                      ignored_params=fixed_parameters(model))
        graph.load_pruning_history(channels)
        mend_attention(model)
    return model
