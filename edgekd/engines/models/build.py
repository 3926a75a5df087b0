"""Build a network from a timm name or a ``package.module:function`` entry point."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import EdgeKDError, ModelError


def build_model(name: str, num_classes: int, kwargs: dict[str, Any] | None = None, *,
                what: str = "model") -> nn.Module:
    """A freshly initialised network with ``num_classes`` outputs. Never downloads weights.

    ``what`` names the config key the model comes from (``teacher.model``), so an error
    raised while building it says which one to check.
    """
    kwargs = dict(kwargs or {})
    if kwargs.pop("pretrained", False):
        raise ModelError(
            f"{what} {name!r}: pretrained=True would download weights, and edgekd never downloads",
            hint="save the weights to a file and set checkpoint: <path> instead",
        )
    if ":" in name:
        return _from_entry_point(name, num_classes, kwargs, what)
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ModelError(
            f"unknown {what} {name!r}: not a timm model name and not a 'module:function' entry point",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "see timm.list_models(), or write 'my_package.my_module:build_fn'",
        )
    return _call_builder(name, lambda: timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs),
                         num_classes, kwargs, what)


def _call_builder(name: str, build: Callable[[], Any], num_classes: int, kwargs: dict[str, Any], what: str) -> Any:
    """Run code that builds the user's model (timm's or their own); what it raises becomes a
    ``ModelError`` naming the model, with the original kept as ``__cause__`` (shown by ``-v``)."""
    try:
        return build()
    except EdgeKDError:
        raise
    except Exception as exc:
        args = ", ".join([f"num_classes={num_classes}", *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise ModelError(
            f"{what} {name!r} raised {type(exc).__name__}: {exc}",
            hint=f"check that {name}({args}) builds the network (these are the arguments edgekd passes: "
            f"num_classes from the data, the rest from the config's kwargs); run with -v for the traceback",
        ) from exc


# Builders that moved inside edgekd: model folders written before the move name the old module.
MOVED_MODULES = {"edgekd.search_spaces.builders": "edgekd.engines.search.builders"}


def _from_entry_point(spec: str, num_classes: int, kwargs: dict[str, Any], what: str) -> nn.Module:
    mod_name, _, fn_name = spec.partition(":")
    mod_name = MOVED_MODULES.get(mod_name, mod_name)
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ModelError(
            f"{what} {spec!r}: cannot import {mod_name!r} ({exc})",
            hint="make the module importable (pip install -e your package, or set PYTHONPATH)",
        ) from exc
    except Exception as exc:  # the module itself fails while importing: a syntax error, a raise at top level
        raise ModelError(
            f"{what} {spec!r}: importing {mod_name!r} raised {type(exc).__name__}: {exc}",
            hint=f"fix the module (python -c 'import {mod_name}' shows the traceback, as does -v)",
        ) from exc
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise ModelError(f"{what} {spec!r}: {mod_name} has no callable {fn_name!r}",
                         hint=f"define def {fn_name}(num_classes, **kwargs) in {mod_name}, or fix the name")
    model = _call_builder(spec, lambda: fn(num_classes=num_classes, **kwargs), num_classes, kwargs, what)
    if not isinstance(model, nn.Module):
        raise ModelError(f"{what} {spec!r} returned {type(model).__name__}, not a torch.nn.Module",
                         hint=f"return the network from {fn_name}")
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
