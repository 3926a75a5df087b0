"""Readable model names for people: ``mobilenetv3 w0.5 d0.75``, not the builder path and its kwargs.

A model is stored as what rebuilds it (``edgekd.engines.search.builders:mobilenetv3`` plus
``{size, width, depth}``, or ``torchvision.models:shufflenet_v2_x0_5``); tables and status
lines show this shorter name instead. The stored name stays what the report's JSON holds.
"""

from __future__ import annotations

from typing import Any

BUILDERS = "edgekd.engines.search.builders:"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float | int) and not isinstance(v, bool) else str(v)


def _multipliers(family: str, kwargs: dict[str, Any], default_size: str | None = None) -> str:
    parts = [family]
    size = kwargs.get("size")
    if size and size != default_size:
        parts.append(str(size))
    if "width" in kwargs:
        parts.append(f"w{_num(kwargs['width'])}")
    if "depth" in kwargs:
        parts.append(f"d{_num(kwargs['depth'])}")
    return " ".join(parts)


def _resnet_shape(name: str, kwargs: dict[str, Any]) -> str:
    """The resnet search space's candidates: blocks per stage, first-stage width, and the stem when
    it is timm's deep one (two candidates may differ only there)."""
    layers, channels = kwargs.get("layers"), kwargs.get("channels")
    out = name
    if isinstance(layers, list | tuple) and layers:
        out += " d" + "-".join(str(x) for x in layers)
    if isinstance(channels, list | tuple) and channels:
        out += f" w{channels[0]}"
    if kwargs.get("stem_type"):
        out += f" stem-{kwargs['stem_type']}{kwargs.get('stem_width', '')}"
    return out


def display_name(model: str, kwargs: dict[str, Any] | None = None) -> str:
    """``mobilenetv3 w0.5 d0.75``, ``efficientnet w1 d1.2``, ``resnet18 d1-1-1-1 w16 stem-deep8``,
    ``torchvision shufflenet_v2_x0_5`` (an entry point: its top package and function)."""
    kwargs = kwargs or {}
    if model.startswith(BUILDERS):
        fn = model[len(BUILDERS):]
        return _multipliers(fn, kwargs, default_size="small" if fn == "mobilenetv3" else None)
    if ":" in model:
        module, fn = model.split(":", 1)
        return f"{module.split('.')[0]} {fn}"
    return _resnet_shape(model, kwargs)
