"""BatchNorm over the global batch under DistributedDataParallel (the ranks' statistics combined).

Each of N ranks holds ``batch_size / N`` images of every batch; plain BatchNorm would
normalise each part with its own statistics, so N processes would train a different model
from one. :class:`SyncedBatchNorm` is a ``TorchFunctionMode`` that the trainer enters
around the forward pass of each training step when more than one process trains. It
catches ``torch.nn.functional.batch_norm`` (and ``torch.batch_norm``) calls with ``training=True`` and computes them
from the statistics of the whole global batch; every other call (eval mode, the frozen
teacher, all other functions) runs untouched.

Why a function mode and not ``nn.SyncBatchNorm.convert_sync_batchnorm`` (module swapping):

* It covers every caller of ``F.batch_norm``: ``nn.BatchNorm*d`` and timm's
  ``BatchNormAct2d`` (which calls ``F.batch_norm`` itself, then its activation; torch's
  converter would turn it into a plain ``SyncBatchNorm`` and drop the activation).
* The model is never changed: the state_dict keys, the saved artifacts and what reloads them
  stay the plain architecture, with nothing to convert back.
* NNCF (QAT) applies its quantizers by op name (``.../bn2/batch_norm/0``) from a function
  mode of its own, entered inside the model's forward, so above this one: its hooks still
  see one ``batch_norm`` call and quantize what this mode returns. (NNCF re-issues
  ``F.batch_norm`` as ``torch.batch_norm``, hence both entry points. BatchNorm is usually
  folded into the convolutions before QAT anyway; see quantization/bn_fold.py.)

Momentum, ``momentum=None`` (cumulative average) and ``num_batches_tracked`` are the
module's business before it calls ``F.batch_norm``; here only the statistics are global.

CUDA inputs go through torch's own SyncBatchNorm autograd function (the one
``nn.SyncBatchNorm.forward`` calls: fused kernels, one all-gather). The CPU path is written
here because PyTorch has no CPU kernel for it (``nn.SyncBatchNorm`` raises "expected input
tensor to be on GPU" for CPU tensors under gloo): the same scheme as torch's, one all-reduce
of the per-channel statistics forward and one of the gradient sums backward, with the
native kernel normalising (see :class:`_AllReduceBatchNorm`). Running statistics are updated
as BatchNorm does (biased variance to normalise, unbiased into ``running_var``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

# argument names in order, per entry point: F.batch_norm, and torch.batch_norm (the op it calls,
# which NNCF's function mode calls directly from its own copy of F.batch_norm)
_SIGNATURES = {
    F.batch_norm: ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
    torch.batch_norm: ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps",
                       "cudnn_enabled"),
}
SYNCBN_CUDA = "synchronised (SyncBatchNorm)"
SYNCBN_CPU = "synchronised (all-reduce, CPU)"
NO_BATCHNORM = "none in model"

_seen: set[str] = set()  # what the training runs did since the last take_record() (the pipeline asks per stage)


def _args(names: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    defaults = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}
    return {**defaults, **dict(zip(names, args, strict=False)), **kwargs}


def _shape(x: torch.Tensor) -> tuple[list[int], list[int]]:
    """(the dimensions reduced per channel, the view that broadcasts a per-channel vector)."""
    return [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)


class _AllReduceBatchNorm(torch.autograd.Function):
    """BatchNorm in training mode over all ranks' inputs: one all-reduce forward, one backward.

    Forward: each rank's per-channel count, mean and centred sum of squares (``var_mean``,
    stable), combined over the ranks in float64 (Chan's formula as sums: Σn·mean and
    Σ(M2 + n·mean²)), then the native kernel normalises with the global mean and biased
    variance. Backward (SyncBatchNorm's): the sums of dy and dy·x̂ are all-reduced, and
    dx = w·invstd·(dy − Σdy/N − x̂·Σ(dy·x̂)/N); the weight and bias get this rank's own sums,
    which DDP then averages like every other gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                running_mean: torch.Tensor | None, running_var: torch.Tensor | None, momentum: float,
                eps: float) -> torch.Tensor:
        dims, _ = _shape(x)
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
        n = xf.numel() // max(1, xf.shape[1])
        if n:
            var_l, mean_l = torch.var_mean(xf, dims, correction=0)
        else:  # an empty part of the batch adds nothing
            var_l = mean_l = xf.new_zeros(xf.shape[1])
        m = mean_l.double()
        stats = torch.cat([m.new_full((1,), n), n * m, n * (var_l.double() + m * m)])
        tdist.all_reduce(stats)
        count, c = float(stats[0]), xf.shape[1]
        mean64 = stats[1 : c + 1] / count
        var64 = (stats[c + 1 :] / count - mean64 * mean64).clamp_min(0)  # biased: what normalises
        mean, var = mean64.to(xf.dtype), var64.to(xf.dtype)
        y = torch.batch_norm(xf, weight, bias, mean, var, False, 0.0, eps, False)  # the native kernel
        if running_mean is not None and running_var is not None:
            unbiased = var64 * (count / max(count - 1.0, 1.0))
            running_mean.mul_(1 - momentum).add_(mean64.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        ctx.save_for_backward(xf, weight, mean, torch.rsqrt(var + eps))
        ctx.count, ctx.in_dtype = count, x.dtype
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, mean, invstd = ctx.saved_tensors
        dims, shape = _shape(x)
        dy = dy.to(x.dtype)
        xc = x - mean.view(shape)
        sum_dy = dy.sum(dims)
        sum_dy_xhat = (dy * xc).sum(dims) * invstd
        total = torch.cat([sum_dy, sum_dy_xhat])
        tdist.all_reduce(total)
        g_dy, g_dy_xhat = (total / ctx.count).chunk(2)
        k = invstd if weight is None else invstd * weight
        dx = dy * k.view(shape)  # k·(dy − mean dy − x̂·mean(dy·x̂)), with x̂ = xc·invstd
        dx.addcmul_(xc, (-k * invstd * g_dy_xhat).view(shape)).sub_((k * g_dy).view(shape))
        grad_w = sum_dy_xhat if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = sum_dy if ctx.needs_input_grad[2] else None
        return dx.to(ctx.in_dtype), grad_w, grad_b, None, None, None, None


def all_reduce_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                          weight: torch.Tensor | None, bias: torch.Tensor | None, momentum: float,
                          eps: float) -> torch.Tensor:
    """``F.batch_norm(..., training=True)`` with the statistics of all ranks' inputs together.
    A collective: every rank must call it the same number of times."""
    return _AllReduceBatchNorm.apply(x, weight, bias, running_mean, running_var, momentum, eps)


def _cuda_sync_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                          weight: torch.Tensor | None, bias: torch.Tensor | None, momentum: float,
                          eps: float) -> torch.Tensor:
    """torch's own SyncBatchNorm function, called as ``nn.SyncBatchNorm.forward`` calls it."""
    from torch.nn.modules._functions import SyncBatchNorm

    group = tdist.group.WORLD
    return SyncBatchNorm.apply(x, weight, bias, running_mean, running_var, eps, momentum, group,
                               tdist.get_world_size(group))


class SyncedBatchNorm(TorchFunctionMode):
    """Inside ``with``: training-mode ``F.batch_norm`` calls use the global batch's statistics.

    ``kinds`` collects which path ran (:data:`SYNCBN_CUDA`, :data:`SYNCBN_CPU`)."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        kwargs = kwargs or {}
        names = _SIGNATURES.get(func)
        if names is not None:
            a = _args(names, args, kwargs)
            if a["training"]:
                cuda = a["input"].device.type == "cuda"
                self.kinds.add(SYNCBN_CUDA if cuda else SYNCBN_CPU)
                fn = _cuda_sync_batch_norm if cuda else all_reduce_batch_norm
                return fn(a["input"], a["running_mean"], a["running_var"], a["weight"], a["bias"],
                          a["momentum"] or 0.0, a["eps"])
        return func(*args, **kwargs)


def note(kinds: set[str]) -> None:
    """Record what one training run under torchrun did (no kinds: the model has no BatchNorm)."""
    _seen.update(kinds or {NO_BATCHNORM})


def take_record() -> str | None:
    """What BatchNorm synchronisation the training since the last call did (None: no training
    under torchrun), and forget it."""
    kinds = sorted(_seen - {NO_BATCHNORM}) or sorted(_seen)
    _seen.clear()
    return ", ".join(kinds) or None
