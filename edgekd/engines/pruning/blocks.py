"""Removing whole residual blocks: depth, where channels alone cannot reach a target.

A GPU at batch 1 on small inputs is bound by per-layer launch cost: a network with fewer
channels and the same depth is barely faster there, so pruning channels cannot bring a
launch-bound target within reach. A residual block whose shortcut is the identity can be
removed outright (its output becomes its input, as stochastic depth does during training):
fewer layers, and the rest of the network is unchanged. Torch-pruning slices channels and
does not remove layers, so this is ours; the removal is recorded in the pruning history
(``["drop", name]``) and replayed like the channel cuts (models/pruned.py).
"""

from __future__ import annotations

from torch import nn

from edgekd.engines.models.pruned import DROP, drop_block

# timm's residual blocks, and how each says its shortcut is the identity
_IDENTITY_SHORTCUT = {
    "BasicBlock": lambda m: getattr(m, "downsample", None) is None,
    "Bottleneck": lambda m: getattr(m, "downsample", None) is None,
    "InvertedResidual": lambda m: bool(getattr(m, "has_skip", False)),
    "DepthwiseSeparableConv": lambda m: bool(getattr(m, "has_skip", False)),
    "EdgeResidual": lambda m: bool(getattr(m, "has_skip", False)),
    "UniversalInvertedResidual": lambda m: bool(getattr(m, "has_skip", False)),
}


def droppable_blocks(model: nn.Module) -> list[str]:
    """Names of the blocks that can go whole: residual, identity shortcut (same shape in and out)."""
    return [name for name, m in model.named_modules()
            if type(m).__name__ in _IDENTITY_SHORTCUT and _IDENTITY_SHORTCUT[type(m).__name__](m)]


def drop_blocks(model: nn.Module) -> list[list[str]]:
    """Remove every droppable block in place; the history entries that replay it."""
    names = droppable_blocks(model)
    for name in names:
        drop_block(model, name)
    return [[DROP, name] for name in names]
