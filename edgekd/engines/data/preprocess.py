"""The input contract: how a model expects its images (size, resize, crop, interpolation, mean, std).

A teacher trained elsewhere expects *its* preprocessing; fed anything else it reads near
chance (benchmarks/RESULTS.md, "The teacher's own preprocessing"; timm's
``resolve_data_config`` / ``pretrained_cfg`` and torchvision's ``weights.transforms()``
are where a model records it). So the contract is one value, resolved once per run,
used to decode every image (train, validation, calibration) for the teacher and the
student alike, and written next to every exported file for the device kit.

Decoding uses timm's own transforms (``transforms_imagenet_eval`` / ``_train`` with
``use_prefetcher=True``: PIL in, uint8 CHW tensor out, no normalisation). Normalisation
is done per batch on the training device (``normalize``), which keeps the in-memory path
fast and lets both paths share it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

NAMED_STATS = {"imagenet": (tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD))}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    """What a model expects. ``mean``/``std`` are None until the data set's statistics fill them.

    ``resize``: ``squash`` scales both sides to ``size / crop_fraction`` (aspect ratio lost);
    ``crop`` scales the shorter side to ``size / crop_fraction`` and takes the centre
    ``size`` × ``size`` (torchvision's Resize + CenterCrop; timm's ``crop_mode='center'``).
    ``sources`` says where each field came from (config, checkpoint, timm pretrained_cfg,
    data set statistics), for the report.
    """

    size: int
    resize: str = "squash"
    crop_fraction: float = 1.0
    interpolation: str = "bilinear"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: str = "RGB"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def scale_size(self) -> int:
        """The resize target before the centre crop (timm: ``floor(size / crop_pct)``)."""
        return math.floor(self.size / self.crop_fraction)

    def fill_stats(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Preprocess:
        """The contract with the data set's statistics where no one stated mean or std."""
        src = dict(self.sources)
        for k in ("mean", "std"):
            if getattr(self, k) is None:
                src[k] = "data set statistics"
        return replace(self, mean=self.mean or tuple(mean), std=self.std or tuple(std), sources=src)

    def record(self) -> dict[str, Any]:
        """The plain-data form written to model.json, the export sidecar and validation.npz."""
        d = asdict(self)
        del d["sources"]  # provenance is for the report; the contract itself is the values
        d["size"] = [self.size, self.size]
        d["mean"], d["std"] = list(self.mean or ()), list(self.std or ())
        return {"layout": "NCHW", "dtype": "float32", "scale": "pixel / 255", **d}

    def describe(self) -> str:
        """One line for people: ``96 px, shorter side 109 + centre crop (bilinear), mean/std imagenet``."""
        geo = (f"shorter side to {self.scale_size} + centre crop" if self.resize == "crop"
               else "squashed" + (f" to {self.scale_size} + centre crop" if self.crop_fraction < 1 else ""))
        stats = next((k for k, v in NAMED_STATS.items() if v == (self.mean, self.std)), None)
        norm = f"mean/std {stats}" if stats else f"mean {_fmt(self.mean)} std {_fmt(self.std)}"
        bgr = ", BGR" if self.channels == "BGR" else ""
        return f"{self.size} px, {geo} ({self.interpolation}), {norm}{bgr}"

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 batch [N, 3, H, W] (RGB) → the float input the model expects. ``mean``/``std`` are
        in RGB order (as the images are read, and as ``imagenet`` and data set statistics are);
        with ``channels: BGR`` the normalised channels are then reversed."""
        assert self.mean is not None and self.std is not None, "preprocessing statistics not resolved"
        mean = torch.tensor(self.mean, device=x_uint8.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x_uint8.device).view(1, -1, 1, 1)
        x = (x_uint8.float() / 255.0 - mean) / std
        return x.flip(1) if self.channels == "BGR" else x

    def eval_transform(self):
        """PIL image → uint8 tensor [3, size, size], as timm evaluates (resize, centre crop)."""
        from timm.data.transforms_factory import transforms_imagenet_eval

        return transforms_imagenet_eval(self.size, crop_pct=self.crop_fraction,
                                        crop_mode="center" if self.resize == "crop" else "squash",
                                        interpolation=self.interpolation, use_prefetcher=True)

    def train_transform(self, crop_scale: tuple[float, float]):
        """PIL image → uint8 tensor, random-resized crop (timm's); flips and shifts are done on the device."""
        from timm.data.transforms_factory import transforms_imagenet_train

        return transforms_imagenet_train(self.size, scale=tuple(crop_scale), hflip=0.0, color_jitter=None,
                                         interpolation=self.interpolation, use_prefetcher=True)


def _fmt(v: tuple[float, ...] | None) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in v) + "]" if v else "?"


def named_stats(value: Any, which: str) -> tuple[float, ...] | None:
    """``imagenet`` → its ``which`` (mean or std) tuple; a list → a tuple; ``dataset``/None → None
    (filled from the data)."""
    if value is None or value == "dataset":
        return None
    if isinstance(value, str):
        return NAMED_STATS[value][("mean", "std").index(which)]
    return tuple(float(v) for v in value)


def from_record(rec: dict[str, Any], source: str) -> dict[str, Any]:
    """Fields of a recorded contract (model.json / checkpoint metadata) as resolution candidates."""
    out: dict[str, Any] = {}
    size = rec.get("size")
    if size is not None:
        out["size"] = int(size[0] if isinstance(size, list | tuple) else size)
    for k in ("resize", "crop_fraction", "interpolation", "channels"):
        if rec.get(k) is not None:
            out[k] = rec[k]
    for k in ("mean", "std"):
        if rec.get(k):
            out[k] = tuple(float(v) for v in rec[k])
    return {k: (v, source) for k, v in out.items()}


def from_timm_config(cfg: dict[str, Any], source: str) -> dict[str, Any]:
    """timm's resolved data config (``resolve_data_config``) as resolution candidates."""
    out: dict[str, Any] = {
        "size": int(cfg["input_size"][-1]),
        "interpolation": cfg["interpolation"] if cfg.get("interpolation") in INTERPOLATIONS else "bicubic",
        "crop_fraction": float(cfg.get("crop_pct") or 0.875),
        "resize": "squash" if cfg.get("crop_mode") == "squash" else "crop",
        "mean": tuple(cfg["mean"]),
        "std": tuple(cfg["std"]),
    }
    return {k: (v, source) for k, v in out.items()}


DEFAULTS: dict[str, Any] = {"size": 32, "resize": "squash", "crop_fraction": 1.0, "interpolation": "bilinear",
                            "channels": "RGB", "mean": None, "std": None}
FIELDS = tuple(DEFAULTS)


def config_layer(cfg: Any) -> dict[str, tuple[Any, str]]:
    """What ``data.image_size`` and ``data.preprocess`` state (a ``DataConfig``), as the first layer."""
    out: dict[str, tuple[Any, str]] = {}
    if cfg.image_size is not None:
        out["size"] = (cfg.image_size, "config")
    p = cfg.preprocess
    for k in ("resize", "crop_fraction", "interpolation", "channels"):
        if getattr(p, k) is not None:
            out[k] = (getattr(p, k), "config")
    for k in ("mean", "std"):
        v = getattr(p, k)
        if v is not None:
            out[k] = (named_stats(v, k), "data set statistics (config)" if v == "dataset" else "config")
    return out


def resolve(layers: list[dict[str, tuple[Any, str]]]) -> Preprocess:
    """Field by field, the first layer that states it wins; the rest are defaults.

    Layers in order: the config, the teacher checkpoint's record, timm's data config of the
    teacher. A field no layer states takes ``DEFAULTS`` (mean/std None: this data set's
    statistics, filled in by ``load_data``).
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    # resize and crop_fraction are one decision: the crop comes from the layer that chose the resize
    # or one above it, never from below (a record's "squash" with timm's ViT crop_pct 0.9 under it
    # squashed to 35 px and cropped 32, 0.25 points below the script that trained the teacher)
    decided = next((i for i, layer in enumerate(layers) if "resize" in layer), len(layers))
    for k in FIELDS:
        above = layers[: decided + 1] if k == "crop_fraction" else layers
        hit = next((layer[k] for layer in above if k in layer), None)
        values[k], sources[k] = hit if hit is not None else (DEFAULTS[k], "default")
        if values[k] is None:
            sources[k] = "data set statistics" if hit is None else sources[k]
    if values["resize"] == "crop" and sources["crop_fraction"] == "default":
        values["crop_fraction"], sources["crop_fraction"] = 0.875, "default for resize: crop (torchvision's 224/256)"
    return Preprocess(**values, sources=sources)
