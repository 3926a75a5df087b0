"""The teacher's logits of one training run's batches, reused by the next run that sees them.

Distill trains several students from one seed (the searched student and the teacher pruned to
the budget, each raced): every run draws the same batches with the same random augmentation,
so the teacher's forward pass, most of a KD step's cost when the student is small (a
half-width ResNet-18 teacher costs about as much as three forward and backward passes of the
searched student), need run once per batch, not once per run. An entry is used only for the
batch it was computed on (same epoch, step, image indices and checksum of the augmented
images), so a run whose batches differ computes its own. Kept up to a memory cap: past it,
later batches are not kept (a 224-px folder with 1000 classes over many epochs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

CAP_BYTES = 256 * 2**20


def _checksum(xb: torch.Tensor) -> tuple[float, float]:
    x = xb.detach().double()
    return float(x.sum()), float((x * x).sum())


@dataclass
class TeacherMemo:
    cap_bytes: int = CAP_BYTES
    entries: dict[tuple[int, int], tuple[torch.Tensor, tuple[float, float], torch.Tensor]] = field(default_factory=dict)
    used: int = 0
    hits: int = 0
    misses: int = 0

    def get(self, epoch: int, step: int, idx: torch.Tensor, xb: torch.Tensor) -> torch.Tensor | None:
        """The logits computed for exactly this batch, or None."""
        hit = self.entries.get((epoch, step))
        if hit is not None and torch.equal(hit[0], idx.to(hit[0].device)) and hit[1] == _checksum(xb):
            self.hits += 1
            return hit[2]
        self.misses += 1
        return None

    def put(self, epoch: int, step: int, idx: torch.Tensor, xb: torch.Tensor, logits: torch.Tensor) -> None:
        size = logits.numel() * logits.element_size() + idx.numel() * idx.element_size()
        if (epoch, step) in self.entries or self.used + size > self.cap_bytes:
            return
        self.entries[(epoch, step)] = (idx.detach().clone(), _checksum(xb), logits.detach())
        self.used += size
