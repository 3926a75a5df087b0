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
    dry_forward(model, input_size, hooks)
    if not seen:
        raise ValueError("model produces no 4-D feature map; feature losses need one")
    return seen[-1]


def dry_forward(model: nn.Module, input_size: int, hooks: list | tuple = (), batch: int = 1) -> torch.Tensor:
    """The output of one forward pass of blank images in eval mode (BatchNorm's running statistics
    untouched), for hooks to see each layer; ``hooks`` are removed and the model's mode restored after."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            return model(torch.zeros(batch, 3, input_size, input_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


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


def stage_layers(model: nn.Module, input_size: int = 32, count: int = 4) -> list[str]:
    """Module names of the model's last ``count`` stages, in forward order (for multi-branch losses).

    With timm's ``feature_info``: a CNN's stages are the last module at each reduction (ResNet:
    ``layer1``..``layer4``, the stem left out once there are ``count`` later ones); a ViT reports
    every block at one reduction, so evenly spaced blocks are taken, ending at the last one
    (depth 12, count 4: blocks 2, 5, 8, 11), the same depth fractions a 4-stage CNN splits at.
    Without it: per distinct 4-D output size, the shallowest modules that output it (a stage, not
    a layer inside a block) and of those the last to finish, found by one dry forward pass.
    """
    info = getattr(model, "feature_info", None)
    names = dict(model.named_modules())
    if isinstance(info, list) and info and all(isinstance(i, dict) and i.get("module") in names for i in info):
        groups: dict[int, str] = {}
        for entry in info:  # dicts keep insertion order: the last module per reduction wins
            groups.pop(entry.get("reduction", 0), None)
            groups[entry.get("reduction", 0)] = entry["module"]
        if len(groups) > 1:
            return list(groups.values())[-count:]
        blocks = [e["module"] for e in info]
        picks = sorted({round((k + 1) * len(blocks) / count) - 1 for k in range(count)})
        return [blocks[i] for i in picks if i >= 0]
    return _spatial_stages(model, input_size)[-count:]


def _spatial_stages(model: nn.Module, input_size: int) -> list[str]:
    """Per 4-D output size, the last-finishing of the shallowest modules, from one dry forward pass."""
    last: dict[tuple[int, ...], str] = {}
    hooks = []

    def seen(name: str, mod: nn.Module, out: object) -> None:
        if not (isinstance(out, torch.Tensor) and out.ndim == 4):
            return
        if out.shape[-2:] == (1, 1) and "pool" in type(mod).__name__.lower():
            return  # the global pooling before the head: not a stage
        size = tuple(out.shape[-2:])
        if size not in last or name.count(".") <= last[size].count("."):
            last.pop(size, None)  # re-inserted: the dict's order is the stages' order
            last[size] = name

    for name, mod in model.named_modules():
        if name:
            hooks.append(mod.register_forward_hook(lambda m, i, o, n=name: seen(n, m, o)))
    dry_forward(model, input_size, hooks)
    if not last:
        raise ValueError("model produces no 4-D feature map and has no timm feature_info; stage losses need one")
    return list(last.values())


class StageTap:
    """Keeps the latest outputs of several modules (``values``, in ``layers`` order) until closed."""

    def __init__(self, model: nn.Module, layers: list[str]) -> None:
        self.layers = layers
        self._taps = [FeatureTap(model, name) for name in layers]

    @property
    def values(self) -> list[torch.Tensor]:
        out = [t.value for t in self._taps]
        if any(v is None for v in out):
            raise RuntimeError("stage tap read before the model ran a forward pass")
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for t in self._taps:
            t.close()
