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
tensor to be on GPU" for CPU tensors under gloo): the per-channel sum and count, then the
summed squared deviations from the global mean, are all-reduced by a differentiable sum
(its backward all-reduces the gradients), so gradients flow through the global statistics
as in SyncBatchNorm's backward. Running statistics are updated
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


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks, differentiable: the gradient of a sum is the sum of the ranks'
    gradients. (``torch.distributed.nn.functional.all_reduce`` does the same but is deprecated,
    and the functional collectives have no autograd in older torch.)"""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(grad)
        return grad


def all_reduce_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                          weight: torch.Tensor | None, bias: torch.Tensor | None, momentum: float,
                          eps: float) -> torch.Tensor:
    """``F.batch_norm(..., training=True)`` with the statistics of all ranks' inputs together.

    Two autograd-aware all-reduces per call (sum and count, then the squared deviations from
    the global mean: exact, no E[x²]−E[x]² cancellation). Half-precision inputs are reduced in
    float32. Every rank must call it the same number of times (it is a collective)."""
    all_reduce = _AllReduceSum.apply
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    local = torch.cat([xf.sum(dims), xf.new_full((1,), x.numel() // max(1, x.shape[1]))])
    total = all_reduce(local)
    count = total[-1]
    mean = total[:-1] / count
    centred = xf - mean.view(shape)
    var = all_reduce(centred.square().sum(dims)) / count  # biased: what normalises
    y = centred * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            n = float(count)
            running_mean.mul_(1 - momentum).add_(mean.detach().to(running_mean.dtype), alpha=momentum)
            unbiased = var.detach() * (n / max(n - 1.0, 1.0))
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
    return y.to(x.dtype)


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
