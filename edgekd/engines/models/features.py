"""Capturing a model's last feature map (before global pooling) for feature/relation losses.

A forward hook on one named module works the same for a plain timm model, a pruned one
and an NNCF-quantized one (all keep their module names), and for any user model.
"""

from __future__ import annotations

import torch
from torch import nn


def default_feature_layer(model: nn.Module, input_size: int = 32) -> str:
    """timm's last ``feature_info`` module, else the last module that outputs a 4-D map."""
    info = getattr(model, "feature_info", None)
    if info:
        last = info[-1] if isinstance(info, list) else None
        name = last.get("module") if isinstance(last, dict) else None
        if name and name in dict(model.named_modules()):
            return name
    seen: list[str] = []
    hooks = []
    for name, mod in model.named_modules():
        if name and not list(mod.children()):
            hooks.append(mod.register_forward_hook(lambda m, i, o, n=name: seen.append(n) if isinstance(o, torch.Tensor) and o.ndim == 4 else None))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not seen:
        raise ValueError("model produces no 4-D feature map; feature losses need one")
    return seen[-1]


class FeatureTap:
    """Keeps the latest output of ``layer`` while the tap is open (use as a context manager)."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        modules = dict(model.named_modules())
        if layer not in modules:
            raise KeyError(f"no module named {layer!r}")
        self.value: torch.Tensor | None = None
        self._handle = modules[layer].register_forward_hook(self._hook)

    def _hook(self, _m: nn.Module, _i: object, out: object) -> None:
        self.value = out if isinstance(out, torch.Tensor) else out[0]  # type: ignore[index]

    def close(self) -> None:
        self._handle.remove()

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
