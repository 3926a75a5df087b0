"""The distillation trainer shared by distill, the prune fine-tune and QAT.

Teacher in eval mode under ``no_grad``; student loss = weighted sum of registry terms;
per-epoch validation; the best epoch's weights are kept (and written, when a path is
given); a NaN/inf loss stops the run with a clear error instead of saving garbage. The
same code runs on CPU or CUDA (bf16 autocast and channels_last on CUDA).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape
from torch import nn

from edgekd.core import dist
from edgekd.core.config import TrainConfig
from edgekd.core.errors import ConfigError, TrainingError
from edgekd.core.progress import SILENT, Reporter
from edgekd.engines.data.bundle import Data, DataBundle, augment
from edgekd.engines.models.checkpoint import save_state_dict
from edgekd.engines.models.features import FeatureTap, StageTap, default_feature_layer, dry_forward, stage_layers
from edgekd.engines.train.evaluate import eval_batch_size, evaluate
from edgekd.engines.train.losses import LossInputs, LossTermModule, build_loss_terms
from edgekd.engines.train.recipes import describe, fitted
from edgekd.engines.train.sync_bn import SyncedBatchNorm, note
from edgekd.engines.train.teacher_memo import TeacherMemo


@dataclass
class TrainResult:
    best_accuracy: float
    best_epoch: int
    final_accuracy: float
    seconds: float
    images_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None  # stopped early by a race: at which epoch, and why
    recipe: dict[str, Any] | None = None  # the family recipe and the settings it filled in

    def metrics(self) -> dict[str, Any]:
        return {**({"stopped": self.stopped} if self.stopped else {}),
            **({"training_recipe": self.recipe} if self.recipe else {}),
            "accuracy": round(self.best_accuracy, 3),
            "best_epoch": self.best_epoch,
            "final_accuracy": round(self.final_accuracy, 3),
            "train_seconds": round(self.seconds, 2),
            "images_per_second": round(self.images_per_second, 1),
            "history": self.history,
        }


def _optimizer(model: nn.Module, cfg: TrainConfig, extra: Iterable[nn.Parameter] = ()) -> torch.optim.Optimizer:
    """The student's optimizer; ``extra``: the loss terms' own trainable parameters (OFA's projectors)."""
    params = [p for p in model.parameters() if p.requires_grad] + list(extra)
    o = cfg.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov and o.momentum > 0)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    s = cfg.schedule
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = int(s.warmup_epochs * steps_per_epoch)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if s.name == "constant":
            return 1.0
        if s.name == "step":
            return s.gamma ** ((step // steps_per_epoch) // s.step_epochs)
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


class LossComputer:
    """The configured loss for one batch: teacher forward (no grad), student forward, terms.

    Shared by the training loop and by gradient-based pruning importance, so "the
    distillation loss" means the same thing in both.
    """

    def __init__(self, student: nn.Module, cfg: TrainConfig, teacher: nn.Module | None, input_size: int,
                 label: str, feature_layers: tuple[str | None, str | None] = (None, None)) -> None:
        self.terms = build_loss_terms(cfg.loss)
        self.needs_teacher = any(t.needs_teacher for _, t in self.terms)
        needs_features = any(t.needs_features for _, t in self.terms)
        if self.needs_teacher and teacher is None:
            names = [t.name for t in cfg.loss]
            raise ConfigError(f"{label}: loss {names} needs a teacher, but none is available",
                              hint="use loss: [{name: ce}] or provide a teacher")
        self.student, self.teacher = student, teacher
        self.taps: tuple[FeatureTap, FeatureTap] | None = None
        self.teacher_logits: torch.Tensor | None = None
        if needs_features:
            assert teacher is not None
            s_layer = feature_layers[0] or default_feature_layer(student, input_size)
            t_layer = feature_layers[1] or default_feature_layer(teacher, input_size)
            self.taps = (FeatureTap(student, s_layer), FeatureTap(teacher, t_layer))
        stage_terms = [t for _, t in self.terms if t.needs_stage_features]
        self.stages = _open_stages(student, stage_terms, input_size) if stage_terms else None

    @property
    def needs_features(self) -> bool:
        return self.taps is not None

    def parameters(self) -> list[nn.Parameter]:
        """The loss terms' trainable parameters (not the student's): trained with it, never saved with it."""
        return [p for _, t in self.terms for p in t.parameters() if p.requires_grad]

    def sync_gradients(self) -> None:
        """Under torchrun: average the terms' gradients over the ranks, as DDP does for the student's
        (the projectors are not inside the DDP wrapper). One all-reduce of the flattened gradients."""
        params = [p for p in self.parameters() if p.grad is not None]
        if not params or not dist.world().active:
            return
        import torch.distributed as tdist

        flat = torch.cat([p.grad.reshape(-1) for p in params])  # type: ignore[union-attr]
        tdist.all_reduce(flat)
        flat /= dist.world().size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p))  # type: ignore[union-attr]
            offset += n

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, t_logits: torch.Tensor | None = None) -> torch.Tensor:
        if self.needs_teacher and t_logits is None:
            with torch.no_grad():
                t_logits = self.teacher(xb)  # type: ignore[misc]
        self.teacher_logits = t_logits  # what this batch was distilled from (a memo keeps it for the next run)
        s_logits = self.student(xb)
        taps = self.taps
        inp = LossInputs(s_logits, yb, t_logits, taps[0].value if taps else None, taps[1].value if taps else None,
                         self.stages.values if self.stages else None)
        return sum(w * term(inp) for w, term in self.terms)  # type: ignore[return-value]

    def close(self) -> None:
        if self.taps:
            self.taps[0].close()
            self.taps[1].close()
        if self.stages:
            self.stages.close()


def _open_stages(student: nn.Module, terms: list[LossTermModule], input_size: int) -> StageTap:
    """Tap the student's stages and let the terms build their parts (projectors) from one dry forward
    pass, so their parameters exist before the optimizer is built. Under torchrun every rank starts
    from rank 0's projectors, as DDP starts the student from rank 0's weights."""
    count = max(t.stage_count for t in terms)  # type: ignore[attr-defined]
    tap = StageTap(student, stage_layers(student, input_size, count))
    device = next(student.parameters()).device
    try:
        logits = dry_forward(student, input_size, batch=2)
        for t in terms:
            t.build(tap.values, logits.shape[-1])  # type: ignore[attr-defined]
            t.to(device)
    except BaseException:
        tap.close()
        raise
    if dist.world().active:
        import torch.distributed as tdist

        for t in terms:
            for tensor in [*t.parameters(), *t.buffers()]:
                tdist.broadcast(tensor.data, src=0)
    return tap


@torch.no_grad()
def teacher_logits(teacher: nn.Module, data: DataBundle, batch_size: int | None = None) -> torch.Tensor:
    """The teacher's logits for every (unaugmented) training image, computed once.

    Without augmentation the teacher sees the same images every epoch, so its forward
    pass need not be repeated: for a small student this removes most of a KD step's cost.
    In-memory data only: streamed data computes them per batch.
    """
    teacher.eval()
    x = data.train_x
    batch_size = batch_size or eval_batch_size(data.image_size)
    return torch.cat([teacher(data.normalize(x[i : i + batch_size])).float() for i in range(0, x.shape[0], batch_size)])


def loss_gradients(student: nn.Module, data: Data, cfg: TrainConfig, *, teacher: nn.Module | None,
                   batches: int, seed: int = 0) -> None:
    """Accumulate the configured loss's gradients over a few training batches into ``.grad``."""
    gen = torch.Generator().manual_seed(seed)
    computer = LossComputer(student, cfg, teacher, data.image_size, "importance")
    try:
        student.train()
        if teacher is not None:
            teacher.eval()
        for _, xb, yb in data.train_epoch(cfg.batch_size, gen, max_steps=batches):
            computer(data.normalize(xb), yb).backward()
    finally:
        computer.close()


@dataclass
class _Loop:
    """One training run's moving parts; ``epoch`` runs one pass over the training set."""

    student: nn.Module
    data: Data
    cfg: TrainConfig
    computer: LossComputer
    gen: torch.Generator
    batch_size: int
    cached: torch.Tensor | None  # the teacher's logits, computed once (in-memory data, no augmentation)
    cuda: bool
    label: str
    shard: tuple[int, int] | None = None  # (rank, world) under torchrun: this rank's part of each batch
    memo: TeacherMemo | None = None  # the teacher's logits per batch, shared with the runs after this one
    opt: torch.optim.Optimizer = field(init=False)
    sched: torch.optim.lr_scheduler.LambdaLR = field(init=False)
    bn_sync: SyncedBatchNorm | None = field(init=False)  # under torchrun: BatchNorm over the global batch

    def __post_init__(self) -> None:
        self.bn_sync = SyncedBatchNorm() if self.shard is not None else None
        n = self.data.num_train
        self.steps_per_epoch = max(1, min(n // self.batch_size, self.cfg.max_steps_per_epoch or n))
        self.opt = _optimizer(self.student, self.cfg, self.computer.parameters())
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(self.cfg, self.steps_per_epoch))
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else torch.autocast("cpu", enabled=False)

    def epoch(self, epoch: int, advance: Callable[..., None]) -> tuple[float, int]:
        """(summed loss, images seen) of one epoch; a non-finite loss stops the run."""
        cfg, data = self.cfg, self.data
        self.student.train()
        loss_sum, count = 0.0, 0
        batches = data.train_epoch(self.batch_size, self.gen, crop_scale=cfg.augment.crop_scale,
                                   max_steps=cfg.max_steps_per_epoch, shard=self.shard)
        for step, (idx, xb, yb) in enumerate(batches):
            # under torchrun the random shifts are drawn for the global batch, as one process draws them
            xb = data.normalize(augment(xb, cfg.augment, self.gen, shard=self.shard, global_batch=self.batch_size))
            if self.cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            memo = self.memo if self.cached is None else None
            known = self.cached[idx] if self.cached is not None else memo.get(epoch, step, idx, xb) if memo else None
            with self.autocast, self.bn_sync or contextlib.nullcontext():
                loss = self.computer(xb, yb, known)
            if memo is not None and known is None and self.computer.teacher_logits is not None:
                memo.put(epoch, step, idx, xb, self.computer.teacher_logits)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{self.label}: loss became {loss.item()} at epoch {epoch}, step {step + 1} "
                    f"(lr {self.sched.get_last_lr()[0]:.3g})",
                    hint=f"lower the learning rate (now {cfg.optimizer.lr}), keep grad_clip set, "
                    "or check the data for NaN/inf; finished stages are kept, re-run with --resume",
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            extra = self.computer.parameters()
            if extra and self.shard is not None:
                self.computer.sync_gradients()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.student.parameters(), cfg.grad_clip)
                if extra:  # clipped apart: the student's steps stay what they are without the projectors
                    nn.utils.clip_grad_norm_(extra, cfg.grad_clip)
            self.opt.step()
            self.sched.step()
            loss_sum += float(loss.detach()) * xb.shape[0]
            count += xb.shape[0]
            advance(1)
        return loss_sum, count


def _prepare(student: nn.Module, data: Data, cfg: TrainConfig, teacher: nn.Module | None, device: torch.device,
             label: str, feature_layers: tuple[str | None, str | None]) -> tuple[LossComputer, torch.Tensor | None]:
    """The loss for this run and, when the teacher sees fixed images, its logits computed once."""
    student.to(device)
    if device.type == "cuda":
        student.to(memory_format=torch.channels_last)
    computer = LossComputer(student, cfg, teacher, data.image_size, label, feature_layers)
    if teacher is not None and computer.needs_teacher:
        teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    if cfg.augment.crop_scale is not None and data.in_memory:
        computer.close()
        raise ConfigError(f"{label}: augment.crop_scale needs images streamed from a folder, but this data set is "
                          "held in memory at the input size",
                          hint="set data.stream: true (image folders), or remove augment.crop_scale")
    no_augment = cfg.augment.shift == 0 and not cfg.augment.hflip
    cached = None
    if computer.needs_teacher and not computer.needs_features and no_augment and data.in_memory:
        cached = teacher_logits(teacher, data)  # type: ignore[arg-type]
    if dist.world().active:  # gradients averaged over the ranks; DDP starts every rank from rank 0's weights
        from torch.nn.parallel import DistributedDataParallel

        computer.student = DistributedDataParallel(student, device_ids=[device.index] if device.type == "cuda" else None)
    return computer, cached


def fitted_batch(batch_size: int, num_train: int) -> int:
    """``batch_size``, or when it exceeds the training set, the largest power of two that gives at
    least 8 steps per epoch: one step per epoch does not train (a 10% student on digits)."""
    if batch_size <= num_train:
        return batch_size
    return max(1, 2 ** max(0, (num_train // 8).bit_length() - 1))


def train(
    student: nn.Module,
    data: Data,
    cfg: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    reporter: Reporter = SILENT,
    label: str = "train",
    best_path: Path | None = None,
    feature_layers: tuple[str | None, str | None] = (None, None),
    stop: Callable[[int, float], str | None] | None = None,
    memo: TeacherMemo | None = None,
) -> TrainResult:
    """Train ``student`` in place (ending on its best epoch) and return the history.

    ``data`` should already be on ``device`` (``bundle.to(device)``) to avoid copies.
    ``stop(epoch, val_accuracy)``: after each epoch, a reason to stop here (a race), or None.
    ``memo``: the teacher's logits of earlier runs' batches (teacher_memo.py), reused where the batch is the same.
    Every rank reads the same validation accuracy, so under torchrun they stop together.
    """
    device = torch.device(device)
    cfg, recipe = fitted(cfg, student)
    if recipe["changed"]:
        reporter.line(f"[dim]{escape(f'{label}: {describe(recipe)}')}[/]")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    computer, cached = _prepare(student, data, cfg, teacher, device, label, feature_layers)
    w = dist.world()
    batch = fitted_batch(cfg.batch_size, data.num_train)
    if batch != cfg.batch_size:
        reporter.warn(label, f"batch_size {cfg.batch_size} is larger than the training set ({data.num_train} images): "
                             f"{batch} instead, so an epoch is {data.num_train // batch} steps, not one; set a "
                             "smaller batch_size to choose it yourself")
    loop = _Loop(computer.student, data, cfg, computer, gen, batch, cached, device.type == "cuda", label,
                 shard=(w.rank, w.size) if w.active else None,
                 memo=memo if computer.needs_teacher and not computer.needs_features else None)
    best_acc, best_epoch, best_state = -1.0, 0, None
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    seen = 0
    stopped: dict[str, Any] | None = None
    try:
        with reporter.task(label, total=cfg.epochs * loop.steps_per_epoch) as advance:
            for epoch in range(1, cfg.epochs + 1):
                te = time.perf_counter()
                loss_sum, count = loop.epoch(epoch, advance)
                loss_sum, count = dist.sum_all([loss_sum, count], "cuda" if w.backend == "nccl" else "cpu")
                seen += count
                train_seconds = time.perf_counter() - te
                acc = evaluate(student, data, device)
                history.append({
                    "epoch": epoch,
                    "train_loss": round(loss_sum / max(1, count), 5),
                    "val_accuracy": round(acc, 3),
                    "lr": round(loop.sched.get_last_lr()[0], 6),
                    "seconds": round(time.perf_counter() - te, 2),
                    "images_per_second": round(count / max(train_seconds, 1e-9), 1),  # the training loop alone
                })
                if acc > best_acc:
                    best_acc, best_epoch = acc, epoch
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in student.state_dict().items()})
                    if best_path is not None and w.main:  # rank 0 alone writes
                        save_state_dict(best_state, best_path)
                advance(0, status=f"epoch {epoch}/{cfg.epochs} val {acc:.2f}% best {best_acc:.2f}%")
                reporter.epoch(label, epoch, cfg.epochs, loss=history[-1]["train_loss"], accuracy=acc,
                               elapsed=time.perf_counter() - t0)
                why = stop(epoch, acc) if stop is not None else None
                if why:
                    stopped = {"epoch": epoch, "of": cfg.epochs, "why": why}
                    reporter.line(f"[dim]{escape(f'{label}: {why}')}[/]")
                    break
    finally:
        computer.close()
    if loop.bn_sync is not None:
        note(loop.bn_sync.kinds)
    seconds = time.perf_counter() - t0
    assert best_state is not None
    student.load_state_dict(best_state)
    student.eval()
    return TrainResult(best_acc, best_epoch, history[-1]["val_accuracy"], seconds, seen / max(seconds, 1e-9), history,
                       stopped, recipe)
