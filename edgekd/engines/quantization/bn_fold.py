"""Fold BatchNorm into the convolution before it, before INT8 quantization.

Why: NNCF quantizes a Conv→BN pair as DQ(x)·DQ(w) → Conv → BN → Q, and exports it so.
ONNX Runtime (and TensorRT's explicit-quantization fusions) only turn DQ→Conv→Q into an
integer convolution; with the BN in between, every convolution stays float and pays for
the extra Q/DQ nodes, so unfolded INT8 runs slower than FP32; folded, every convolution
runs as QLinearConv and INT8 is faster (benchmarks/RESULTS.md, "BatchNorm folding").
OpenVINO folds BN itself, so it loses nothing either way.

Hand-written because torch's fusers do not fit: ``torch.fx.experimental.optimization.fuse``
returns a GraphModule NNCF cannot trace, and ``torch.ao`` fusion needs the module names
listed by hand. Here FX only *finds* the Conv→BN pairs (a BN whose single input is a
convolution used nowhere else); the folding edits the model in place with torch's own
``fuse_conv_bn_weights``, so module names, and NNCF's quantizer names, stay stable.
timm's ``BatchNormAct2d`` keeps its activation (and dropout): only the normalisation goes.
"""

from __future__ import annotations

import torch
import torch.fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


class _PairTracer(torch.fx.Tracer):
    """Keeps every convolution and BatchNorm (timm's subclasses included) as one node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(m, qualname)


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, bn name) for every BatchNorm2d fed only by a Conv2d that feeds only it.

    A model FX cannot trace (data-dependent control flow) gets no pairs: it is quantized
    unfolded rather than failing.
    """
    try:
        graph = _PairTracer().trace(model)
    except Exception:  # FX raises many types on untraceable code
        return []
    mods = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, torch.fx.Node) and src.op == "call_module" and len(src.users) == 1
                and isinstance(mods.get(src.target), nn.Conv2d)):
            pairs.append((str(src.target), str(node.target)))
    return pairs


def _after_norm(bn: nn.Module) -> nn.Module:
    """What must stay of a BN module once its normalisation is in the conv."""
    parts = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
    return nn.Sequential(*parts) if parts else nn.Identity()


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def fold_batchnorm(model: nn.Module, pairs: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Fold each pair in place (eval statistics); returns the pairs folded.

    Passing ``pairs`` replays a recorded fold on a freshly built model (reloading a
    quantized artifact): the structure is rebuilt, the weights come from the state_dict.
    """
    pairs = conv_bn_pairs(model) if pairs is None else [tuple(p) for p in pairs]  # type: ignore[misc]
    mods = dict(model.named_modules())
    for conv_name, bn_name in pairs:
        conv, bn = mods[conv_name], mods[bn_name]
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        with torch.no_grad():
            w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                        bn.weight, bn.bias)
        conv.weight, conv.bias = w, b
        _replace(model, bn_name, _after_norm(bn))
    return pairs
