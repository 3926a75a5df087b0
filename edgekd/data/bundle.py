"""The in-memory data set every stage shares.

Images are stored once as a uint8 tensor [N, 3, H, W] (small: 20k images at 32 px is
60 MB), moved to the training device once, and normalised and augmented per batch there.
Why not a DataLoader: a distillation step for a small student at 32 px takes ~16 ms per
256 images on an H100, so per-sample Python transforms would be the whole cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from edgekd.core import registries
from edgekd.core.config import AugmentConfig, DataConfig
from edgekd.core.errors import DataError
from edgekd.core.rundir import hash_obj


@dataclass
class DataBundle:
    name: str
    train_x: torch.Tensor  # uint8 [N, 3, H, W]
    train_y: torch.Tensor  # int64 [N]
    val_x: torch.Tensor
    val_y: torch.Tensor
    class_names: list[str]
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    fingerprint_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def fingerprint(self) -> str:
        return hash_obj(
            {
                "name": self.name,
                "train": list(self.train_x.shape),
                "val": list(self.val_x.shape),
                "classes": self.class_names,
                **self.fingerprint_extra,
            }
        )

    def to(self, device: torch.device | str) -> DataBundle:
        """A copy with the tensors on ``device`` (done once per stage, not per batch)."""
        return DataBundle(
            self.name,
            self.train_x.to(device),
            self.train_y.to(device),
            self.val_x.to(device),
            self.val_y.to(device),
            self.class_names,
            self.mean,
            self.std,
            self.fingerprint_extra,
        )

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 batch → float, normalised with the training set's per-channel statistics."""
        mean = torch.tensor(self.mean, device=x_uint8.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x_uint8.device).view(1, -1, 1, 1)
        return (x_uint8.float() / 255.0 - mean) / std

    def val_inputs(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised validation inputs and labels (at most ``limit``)."""
        n = self.val_x.shape[0] if limit is None else min(limit, self.val_x.shape[0])
        return self.normalize(self.val_x[:n]), self.val_y[:n]

    def preprocessing(self) -> dict[str, Any]:
        """What a deployed model expects, recorded next to every exported artifact."""
        return {
            "layout": "NCHW",
            "dtype": "float32",
            "size": [self.image_size, self.image_size],
            "scale": "pixel / 255",
            "mean": list(self.mean),
            "std": list(self.std),
            "channels": "RGB",
        }


def batch_indices(n: int, batch_size: int, *, generator: torch.Generator,
                  device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """Shuffled index batches of a training epoch, dropping the ragged last batch (BatchNorm
    cannot train on a batch of one)."""
    order = torch.randperm(n, generator=generator).to(device)
    stop = n - n % batch_size if n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i : i + batch_size]


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    n = x.shape[0]
    order = (
        torch.randperm(n, generator=generator).to(x.device)
        if shuffle
        else torch.arange(n, device=x.device)
    )
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], y[idx]


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Random integer shifts (pad-and-crop with zeros) and optional flips, per sample, batched."""
    if cfg.shift == 0 and not cfg.hflip:
        return x
    n, _, h, w = x.shape
    s = cfg.shift
    if s:
        padded = F.pad(x, (s, s, s, s))
        dx = torch.randint(0, 2 * s + 1, (n,), generator=generator).to(x.device)
        dy = torch.randint(0, 2 * s + 1, (n,), generator=generator).to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # [n, h]
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # [n, w]
        idx_r = rows.view(n, 1, h, 1).expand(n, x.shape[1], h, padded.shape[-1])
        x = padded.gather(2, idx_r)
        idx_c = cols.view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        x = x.gather(3, idx_c)
    if cfg.hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    return x


def channel_stats(x_uint8: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x_uint8.float() / 255.0
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def stratified_split(
    y: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic per-class split: the same seed always gives the same indices."""
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        k = max(1, round(idx.numel() * val_fraction)) if idx.numel() > 1 else 0
        val_idx.append(idx[:k])
        train_idx.append(idx[k:])
    tr, va = torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values
    return tr, va


Loader = Callable[[DataConfig, Any], DataBundle]


def load_data(cfg: DataConfig) -> DataBundle:
    """Build the configured data set; checks it has at least two classes and a val split."""
    loader: Loader = registries.DATASETS.get(cfg.source, key="data.source")
    bundle = loader(cfg, cfg.params)
    if bundle.num_classes < 2:
        raise DataError(f"data set {cfg.source!r} has {bundle.num_classes} class; need at least 2")
    if bundle.val_x.shape[0] == 0 or bundle.train_x.shape[0] == 0:
        raise DataError(
            f"data set {cfg.source!r}: empty train or validation split",
            hint="add images or change data.val_fraction",
        )
    return bundle


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a float [N, C, h, w] batch in [0, 1] to ``size`` and quantise to uint8."""
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
