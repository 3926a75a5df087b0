"""A host latency model fitted in the run, on candidates the run timed.

Exporting and timing one small candidate in ONNX Runtime costs 0.1–0.3 s (the export
most of it); its cost counts cost a few milliseconds. A search of a few hundred
candidates therefore times a sample, fits ``ms ≈ a + b·ops + c·MACs + d·activations``
to it (non-negative least squares on the relative error: a 2× miss on a 0.05 ms model
counts as much as on a 5 ms one) and predicts the rest. The fit is made on this machine,
runtime and thread count a moment ago, so it needs no calibration file; its leave-one-out
error is its stated uncertainty (``band``), which decides what must still be timed.
The roofline (roofline.py) is not used here: it needs each candidate's ONNX graph, the
very export this avoids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# the layers a runtime runs as kernels of their own; BatchNorm and ReLU fold into the conv before them
KERNELS = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.LayerNorm, nn.GroupNorm, nn.MaxPool2d, nn.AvgPool2d,
           nn.AdaptiveAvgPool2d, nn.GELU, nn.Softmax, nn.MultiheadAttention)
MIN_BAND = 0.15  # below this, run-to-run timing noise of a sub-0.1 ms model decides, not the fit
BAND_MARGIN = 1.5  # the largest leave-one-out error, widened: a sample of ~20 misses its own worst case


@dataclass(frozen=True)
class Cost:
    """What a forward pass of one image costs: kernels launched, multiply-adds as the CPU's kernels
    run them (channels padded to the SIMD block: a 24-channel conv costs what a 32-channel one
    does on AVX-512), activations written."""
    kernels: int
    macs: float
    activations: float

    def row(self) -> list[float]:
        return [1.0, float(self.kernels), self.macs / 1e6, self.activations / 1e6]


def _padded(n: int, block: int) -> int:
    return -(-n // block) * block


def cost_of(model: nn.Module, input_size: int, block: int | None = None) -> Cost:
    """The model's :class:`Cost` from one forward pass at ``input_size`` with hooks on its leaf layers
    (attention modules count as four kernels: two MatMuls, softmax, the projection). ``block``:
    the channel multiple of this CPU's FP32 kernels (read from its flags when None)."""
    from edgekd.core.hostinfo import host_channel_multiple

    block = block or host_channel_multiple("fp32")[0]
    kernels, acts, macs = [0], [0.0], [0.0]

    def hook(module: nn.Module, _inp, out) -> None:
        kernels[0] += 4 if _is_attention(module) else 1
        t = out[0] if isinstance(out, tuple) else out
        if not isinstance(t, torch.Tensor):
            return
        acts[0] += t.numel()
        if isinstance(module, nn.Conv2d):
            per_out = t.numel() // t.shape[1]  # positions of one output channel
            cin = module.in_channels // module.groups  # input channels: the image's 3 are not blocked
            macs[0] += per_out * _padded(module.out_channels, block) * cin * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            macs[0] += t.numel() // t.shape[-1] * _padded(module.out_features, block) * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, KERNELS) or _is_attention(m)]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return Cost(kernels[0], macs[0], acts[0])


def _is_attention(m: nn.Module) -> bool:
    """timm's and torch's attention blocks (their MatMuls and softmax are not modules)."""
    return type(m).__name__ in ("Attention", "WindowAttention", "MultiheadAttention", "Attention4D", "AttentionSubsample")


@dataclass
class FittedLatency:
    """``ms ≈ coef · cost.row()``, with its leave-one-out relative error as ``band``."""
    coef: np.ndarray
    band: float
    samples: int
    runtime: str

    def predict(self, cost: Cost) -> float:
        return max(float(np.dot(self.coef, cost.row())), 1e-6)

    def bounds(self, cost: Cost) -> tuple[float, float]:
        """The fastest and slowest the candidate may time, given the fit's error."""
        ms = self.predict(cost)
        return ms / (1 + self.band), ms * (1 + self.band)

    def describe(self) -> str:
        return f"fitted on {self.samples} timed candidates ({self.runtime}), ±{self.band:.0%}"


def _nnls(rows: np.ndarray, ms: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    weighted = rows / ms[:, None]  # relative error: each timing counts alike whatever its size
    coef, _ = nnls(weighted, np.ones(len(ms)))
    return coef


def fit_latency(costs: list[Cost], ms: list[float], runtime: str) -> FittedLatency | None:
    """The fit on these timings; None with fewer than 6 (too few to judge its own error)."""
    if len(costs) < 6:
        return None
    rows, y = np.array([c.row() for c in costs]), np.array(ms, dtype=float)
    errors = []
    for i in range(len(y)):  # leave one out: how far a timing it did not see lands
        keep = np.arange(len(y)) != i
        pred = max(float(np.dot(_nnls(rows[keep], y[keep]), rows[i])), 1e-6)
        errors.append(abs(math.log(pred / y[i])))
    band = max(MIN_BAND, math.expm1(max(errors)) * BAND_MARGIN)
    return FittedLatency(_nnls(rows, y), band, len(y), runtime)
