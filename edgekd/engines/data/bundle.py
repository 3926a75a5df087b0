"""The data every stage shares, and the in-memory kind of it.

Small sets are stored once as a uint8 tensor [N, 3, H, W] (20k images at 32 px is 60 MB),
moved to the training device once, and normalised and augmented per batch there. Why not
a DataLoader for them: a distillation step for a small student at 32 px takes ~16 ms per
256 images on an H100, so per-sample Python transforms would be the whole cost. Image
folders that do not fit stream through DataLoader workers instead (``streaming.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

from edgekd.core import registries
from edgekd.core.config import AugmentConfig, DataConfig
from edgekd.core.errors import DataError
from edgekd.core.rundir import hash_obj
from edgekd.engines.data.preprocess import Preprocess, config_layer, resolve


class Data:
    """What every stage reads: classes, the input contract, batches of uint8 images.

    Two kinds: ``DataBundle`` holds every image in memory at the input size (small sets:
    indexed on the device, the fast path); ``StreamingData`` (``data/streaming.py``) decodes
    image folders per batch in DataLoader workers (sets that do not fit). Both yield uint8
    RGB batches on ``device``; ``normalize`` applies the contract on the device.
    """

    name: str
    class_names: list[str]
    preprocess: Preprocess
    fingerprint_extra: dict[str, Any]
    in_memory: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return self.preprocess.size

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def num_train(self) -> int:
        return int(self.train_y.shape[0])  # type: ignore[attr-defined]

    @property
    def num_val(self) -> int:
        return int(self.val_y.shape[0])  # type: ignore[attr-defined]

    def fingerprint(self) -> str:
        return hash_obj({"name": self.name, "train": self.num_train, "val": self.num_val,
                         "classes": self.class_names, "input": self.preprocess.record(), **self.fingerprint_extra})

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 batch → the float input the model expects (the run's preprocessing contract)."""
        return self.preprocess.normalize(x_uint8)

    def preprocessing(self) -> dict[str, Any]:
        """What a deployed model expects, recorded next to every exported artifact."""
        return self.preprocess.record()

    def val_inputs(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised validation inputs and labels (the first ``limit``)."""
        x, y = self.val_images(limit)
        return self.normalize(x), y

    def val_images(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``limit`` validation images as one uint8 batch, and their labels."""
        xs, ys = zip(*self.val_batches(512, limit), strict=True)
        return torch.cat(xs), torch.cat(ys)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images (the contract when none is stated)."""
        raise NotImplementedError

    def train_sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` training images drawn at random (seeded), unaugmented: search and calibration batches."""
        raise NotImplementedError

    def train_epoch(self, batch_size: int, generator: torch.Generator, *, crop_scale: tuple[float, float] | None = None,
                    max_steps: int | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One shuffled epoch of ``(indices, uint8 images, labels)``, the ragged last batch dropped.

        ``shard=(rank, world)``: this rank's part of every batch (``batch[rank::world]``) under
        DistributedDataParallel: every rank draws the same order, so the ranks together see
        exactly the batches one process would (the global batch is ``batch_size``)."""
        raise NotImplementedError

    def val_batches(self, batch_size: int, limit: int | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Validation images in order, ``limit`` of them at most (counted as yielded: an unreadable
        file skipped by policy does not shift what the first ``limit`` images are). ``shard=(rank,
        world)``: every world-th batch from the rank-th (all of them, without ``limit``)."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Data:
        raise NotImplementedError

    def with_class_order(self, names: list[str]) -> Data:
        """The same images with labels renumbered so class ``i`` is ``names[i]`` (a teacher's order)."""
        raise NotImplementedError


def class_permutation(current: list[str], wanted: list[str]) -> torch.Tensor:
    """``perm[old_label] = new_label`` taking ``current`` order to ``wanted`` (same names)."""
    return torch.tensor([wanted.index(c) for c in current], dtype=torch.long)


@dataclass
class DataBundle(Data):
    """Every image in memory as one uint8 tensor [N, 3, H, W], moved to the device once."""

    name: str
    train_x: torch.Tensor  # uint8 [N, 3, H, W]
    train_y: torch.Tensor  # int64 [N]
    val_x: torch.Tensor
    val_y: torch.Tensor
    class_names: list[str]
    preprocess: Preprocess
    fingerprint_extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> DataBundle:
        """A copy with the tensors on ``device`` (done once per stage, not per batch)."""
        return replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                       val_x=self.val_x.to(device), val_y=self.val_y.to(device))

    def with_class_order(self, names: list[str]) -> DataBundle:
        perm = class_permutation(self.class_names, names)
        return replace(self, train_y=perm.to(self.train_y.device)[self.train_y],
                       val_y=perm.to(self.val_y.device)[self.val_y], class_names=list(names))

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return channel_stats(self.train_x)

    def train_sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(self.num_train, generator=g)[: min(n, self.num_train)].to(self.train_x.device)
        return self.train_x[idx], self.train_y[idx]

    def train_epoch(self, batch_size: int, generator: torch.Generator, *, crop_scale: tuple[float, float] | None = None,
                    max_steps: int | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for step, idx in enumerate(batch_indices(self.num_train, batch_size, generator=generator,
                                                 device=self.train_x.device)):
            if max_steps is not None and step >= max_steps:
                return
            if shard is not None:
                idx = idx[shard[0]::shard[1]]
            yield idx, self.train_x[idx], self.train_y[idx]

    def val_batches(self, batch_size: int, limit: int | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_val if limit is None else min(limit, self.num_val)
        for k, i in enumerate(range(0, n, batch_size)):
            if shard is not None and k % shard[1] != shard[0]:
                continue
            j = min(i + batch_size, n)
            yield self.val_x[i:j], self.val_y[i:j]


def batch_indices(n: int, batch_size: int, *, generator: torch.Generator,
                  device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """Shuffled index batches of a training epoch, dropping the ragged last batch (BatchNorm
    cannot train on a batch of one)."""
    order = torch.randperm(n, generator=generator).to(device)
    stop = n - n % batch_size if n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i : i + batch_size]


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator, *,
            shard: tuple[int, int] | None = None, global_batch: int | None = None) -> torch.Tensor:
    """Random integer shifts (pad-and-crop with zeros) and optional flips, per sample, batched.

    ``shard=(rank, world)`` with ``global_batch``: ``x`` is ``batch[rank::world]`` of a batch of
    ``global_batch`` images (DistributedDataParallel); the draws are made for the whole batch
    and this part taken, so N processes augment every image as one process does and their
    generators stay in step with it."""
    if cfg.shift == 0 and not cfg.hflip:
        return x
    n, _, h, w = x.shape
    draws, part = n, slice(None)
    if shard is not None and global_batch is not None and shard[1] > 1:
        draws, part = global_batch, slice(shard[0], None, shard[1])
    s = cfg.shift
    if s:
        padded = F.pad(x, (s, s, s, s))
        dx = torch.randint(0, 2 * s + 1, (draws,), generator=generator)[part].to(x.device)
        dy = torch.randint(0, 2 * s + 1, (draws,), generator=generator)[part].to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # [n, h]
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # [n, w]
        idx_r = rows.view(n, 1, h, 1).expand(n, x.shape[1], h, padded.shape[-1])
        x = padded.gather(2, idx_r)
        idx_c = cols.view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        x = x.gather(3, idx_c)
    if cfg.hflip:
        flip = (torch.rand(draws, generator=generator) < 0.5)[part].to(x.device)
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


Loader = Callable[[DataConfig, Any, Preprocess], Data]


def load_data(cfg: DataConfig, prep: Preprocess | None = None) -> Data:
    """Build the configured data set under the input contract ``prep`` (default: what the config
    states); mean/std left open are this training set's statistics. Checks for two classes and
    non-empty splits."""
    prep = prep or resolve([config_layer(cfg)])
    loader: Loader = registries.DATASETS.get(cfg.source, key="data.source")
    data = loader(cfg, cfg.params, prep)
    if data.num_classes < 2:
        raise DataError(f"data set {cfg.source!r} has {data.num_classes} class; need at least 2")
    if data.num_val == 0 or data.num_train == 0:
        raise DataError(
            f"data set {cfg.source!r}: empty train or validation split",
            hint="add images or change data.val_fraction",
        )
    if prep.mean is None or prep.std is None:
        data.preprocess = prep.fill_stats(*data.channel_stats())
    return data


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a float [N, C, h, w] batch in [0, 1] to ``size`` and quantise to uint8."""
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
