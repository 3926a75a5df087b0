"""Image folders that do not fit in memory: decoded per batch by DataLoader workers.

Peak memory does not grow with the number of images (only file paths and labels are
held). The epoch order is drawn exactly as the in-memory path draws it (one ``randperm``
from the trainer's generator, the ragged last batch dropped), and the same on-device
shift/flip and normalisation follow, so a streamed run without random-resized crops sees
the same batches as an in-memory one. With ``augment.crop_scale`` the workers apply timm's
random-resized crop per image. Teacher logits are computed per batch (no cache).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from edgekd.engines.data.bundle import Data, channel_stats, class_permutation
from edgekd.engines.data.images import iterate
from edgekd.engines.data.preprocess import Preprocess

STATS_SAMPLE = 1024  # images whose statistics stand for the set when the contract leaves mean/std open


@dataclass
class StreamingData(Data):
    name: str
    train_files: list[str]
    train_y: torch.Tensor
    val_files: list[str]
    val_y: torch.Tensor
    class_names: list[str]
    preprocess: Preprocess
    fingerprint_extra: dict[str, Any] = field(default_factory=dict)
    workers: int = 0
    skip_bad: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    in_memory: bool = False

    def to(self, device: torch.device | str) -> StreamingData:
        return replace(self, device=torch.device(device))

    def with_class_order(self, names: list[str]) -> StreamingData:
        perm = class_permutation(self.class_names, names)
        return replace(self, train_y=perm[self.train_y], val_y=perm[self.val_y], class_names=list(names))

    def _decode(self, files: list[str], labels: torch.Tensor, transform, batches: list[list[int]], seed: int = 0):
        pin = self.device.type == "cuda"
        for x, y, idx in iterate(files, labels, transform, batches, workers=self.workers, skip_bad=self.skip_bad,
                                 seed=seed, pin_memory=pin):
            yield idx.to(self.device), x.to(self.device, non_blocking=pin), y.to(self.device, non_blocking=pin)

    def train_sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(self.num_train, generator=g)[: min(n, self.num_train)].tolist()
        chunks = [idx[i : i + 256] for i in range(0, len(idx), 256)]
        parts = [(x, y) for _, x, y in self._decode(self.train_files, self.train_y, self.preprocess.eval_transform(),
                                                     chunks)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return channel_stats(self.train_sample(STATS_SAMPLE, seed=0)[0])

    def train_epoch(self, batch_size: int, generator: torch.Generator, *, crop_scale: tuple[float, float] | None = None,
                    max_steps: int | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """As the in-memory path draws it; with ``crop_scale`` one more draw from ``generator`` seeds
        the workers' random crops."""
        n = self.num_train
        order = torch.randperm(n, generator=generator).tolist()  # as batch_indices draws it
        stop = n - n % batch_size if n >= batch_size else n
        batches = [order[i : i + batch_size] for i in range(0, stop, batch_size)][:max_steps]
        if shard is not None:  # this rank decodes only its part of each batch
            batches = [b[shard[0]::shard[1]] for b in batches]
        seed = 0
        transform = self.preprocess.eval_transform()  # deterministic: the in-memory path's images
        if crop_scale is not None:  # timm's random crops: seeded from the trainer's generator, so a run
            transform = self.preprocess.train_transform(crop_scale)  # (or a resumed one) crops the same
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            if self.workers == 0:
                random.seed(seed)  # timm draws from Python's random; workers are seeded by the DataLoader
        yield from self._decode(self.train_files, self.train_y, transform, batches, seed)

    def val_batches(self, batch_size: int, limit: int | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_val
        want = n if limit is None else min(limit, n)
        batches = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
        if shard is not None:
            batches, want = batches[shard[0]::shard[1]], n
        for _, x, y in self._decode(self.val_files, self.val_y, self.preprocess.eval_transform(), batches):
            yield x[:want], y[:want]  # decode on past skipped files until ``limit`` images are out
            want -= len(x)
            if want <= 0:
                return
