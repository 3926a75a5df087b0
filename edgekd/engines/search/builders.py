"""Entry points for students whose width/depth multipliers timm's named variants don't expose.

They call timm's own family builders (``_gen_mobilenet_v3``, ``_gen_efficientnet``), which
take the multipliers the named variants fix; a model artifact stores
``edgekd.engines.search.builders:<fn>`` plus plain kwargs, so it rebuilds without pickles.
"""

from __future__ import annotations

from torch import nn

from edgekd.core.errors import ModelError


def _timm_builder(module: str, fn: str):
    import importlib

    mod = importlib.import_module(f"timm.models.{module}")
    gen = getattr(mod, fn, None)
    if gen is None:
        import timm

        raise ModelError(f"timm {timm.__version__} has no {module}.{fn}; this search space needs timm>=1.0")
    return gen


def mobilenetv3(num_classes: int, size: str = "small", width: float = 1.0, depth: float = 1.0, **kw) -> nn.Module:
    """MobileNetV3 small/large with a width (channel) and depth (repeat) multiplier."""
    if size not in ("small", "large"):
        raise ModelError(f"mobilenetv3 size must be 'small' or 'large', got {size!r}")
    gen = _timm_builder("mobilenetv3", "_gen_mobilenet_v3")
    return gen(f"mobilenetv3_{size}_100", width, depth_multiplier=depth, num_classes=num_classes, **kw)


def efficientnet(num_classes: int, width: float = 1.0, depth: float = 1.0, **kw) -> nn.Module:
    """EfficientNet-B0 layout scaled by width and depth multipliers (resolution is the data's)."""
    gen = _timm_builder("efficientnet", "_gen_efficientnet")
    return gen("efficientnet_b0", width, depth, num_classes=num_classes, **kw)


def resnet_stages(num_classes: int, variant: str = "resnet18", **kw) -> nn.Module:
    """timm's ResNet with fewer than four stages (``layers``/``channels`` of length 2 or 3): the
    stages it does not build are identities, so the head reads the last stage built."""
    import timm

    layers = kw.get("layers", [])
    if not 1 <= len(layers) <= 4 or len(kw.get("channels", layers)) != len(layers):
        raise ModelError(f"resnet_stages: layers and channels must list 1 to 4 stages alike, got {kw}")
    model = timm.create_model(variant, pretrained=False, num_classes=num_classes, **kw)
    for i in range(len(layers) + 1, 5):
        setattr(model, f"layer{i}", nn.Identity())
    return model

