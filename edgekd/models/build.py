"""Build a network from a timm name or a ``package.module:function`` entry point."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import ModelError


def build_model(name: str, num_classes: int, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised network with ``num_classes`` outputs. Never downloads weights."""
    kwargs = dict(kwargs or {})
    if kwargs.pop("pretrained", False):
        raise ModelError(
            f"model {name!r}: pretrained=True would download weights, and edgekd never downloads",
            hint="save the weights to a file and set checkpoint: <path> instead",
        )
    if ":" in name:
        return _from_entry_point(name, num_classes, kwargs)
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ModelError(
            f"unknown model {name!r}: not a timm model name and not a 'module:function' entry point",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "see timm.list_models(), or write 'my_package.my_module:build_fn'",
        )
    try:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ModelError(f"model {name!r} rejected its kwargs {kwargs}: {exc}") from None


def _from_entry_point(spec: str, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    mod_name, _, fn_name = spec.partition(":")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ModelError(
            f"entry point {spec!r}: cannot import {mod_name!r} ({exc})",
            hint="make the module importable (pip install -e your package, or set PYTHONPATH)",
        ) from None
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise ModelError(f"entry point {spec!r}: {mod_name} has no callable {fn_name!r}")
    try:
        model = fn(num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ModelError(
            f"entry point {spec!r} failed: {exc}",
            hint="the function must accept num_classes=<int> and the configured kwargs",
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"entry point {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def classifier_names(model: nn.Module) -> list[str]:
    """Qualified names of the final classifier layer(s): left alone by pruning by default."""
    get = getattr(model, "get_classifier", None)
    if callable(get):
        clf = get()
        for name, mod in model.named_modules():
            if mod is clf and isinstance(mod, nn.Linear | nn.Conv2d):
                return [name]
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return last[-1:]


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("device: cuda was asked for but no CUDA GPU is visible", hint="use device: auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)
