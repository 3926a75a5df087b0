"""What every exporter shares: the job it gets, the record it returns, the parity check.

Every artifact is validated on real validation images with its own runtime against the
PyTorch model it came from (users' most common complaint about peer tools is accuracy
lost silently at export). FP32 artifacts must match within ``atol`` and agree on top-1;
FP16/INT8 artifacts must stay within ``max_accuracy_gap`` points of PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.core.config import ExportConfig
from edgekd.core.errors import ExportError
from edgekd.engines.data.bundle import DataBundle
from edgekd.engines.models.artifact import ModelSpec
from edgekd.engines.plan.deployment import RunPlan
from edgekd.engines.quantization.recipe import QuantRecipe
from edgekd.engines.runtimes.base import Runner


@dataclass
class ExportJob:
    label: str  # teacher | student | pruned | quantized
    model: nn.Module
    spec: ModelSpec
    data: DataBundle
    out_dir: Path
    cfg: ExportConfig
    plan: RunPlan  # formats, opset and per-target runtimes, resolved once for the run
    torch_logits: torch.Tensor  # reference outputs on the validation inputs
    previous: list[Exported] = field(default_factory=list)  # earlier exporters' results

    @property
    def quantized(self) -> bool:
        return self.spec.quantization is not None

    @property
    def recipe(self) -> QuantRecipe | None:
        """How the model was quantized (None for a float model)."""
        return QuantRecipe.from_record(self.spec.quantization)

    def opset(self) -> int:
        """The configured opset, lowered to what every target's runtime accepts (the plan)."""
        return self.plan.opset

    def onnx_artifact(self) -> Exported | None:
        return next((e for e in self.previous if e.format == "onnx" and e.status == "ok"), None)


@dataclass
class Exported:
    model: str
    format: str
    precision: str
    path: Path | None
    status: str = "ok"  # ok | deferred (to be built on the target) | failed
    size_mb: float | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    command: str | None = None  # the device-kit command that builds it on the target (deferred exports)
    trtexec: str | None = None  # the equivalent trtexec command
    target: str | None = None  # the device an engine is built for
    note: str = ""

    def as_dict(self, root: Path | None = None) -> dict[str, Any]:
        d = asdict(self)
        if self.path is not None:
            d["path"] = str(self.path.relative_to(root)) if root else str(self.path)
        return d


class Exporter:
    name: str

    def export(self, job: ExportJob) -> list[Exported]:
        raise NotImplementedError


def file_size_mb(path: Path) -> float:
    p = Path(path)
    total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return round(total / 1e6, 4)


SIGNIFICANCE = 0.01


def sign_test_p(only_torch: int, only_runtime: int) -> float:
    """One-sided sign (McNemar exact) test: the chance of the runtime losing at least this many
    of the discordant images if rounding flipped them at random. A near-tie model on a few
    hundred images loses 3 images to INT8 rounding by chance (0.8 points of 359); a broken
    export loses dozens, which no allowance in points can tell apart from that."""
    n = only_torch + only_runtime
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(only_torch, n + 1)) / 2**n


def run_validation(runner: Runner, data: DataBundle, n: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The runtime's logits on the first ``n`` validation images (the ones PyTorch's reference
    logits are from), batch by batch: all images of a large folder never sit in memory at once."""
    outs, labels = [], []
    for xb, yb in data.val_batches(batch, n):
        outs.append(runner.run(data.normalize(xb).cpu().numpy().astype(np.float32)))
        labels.append(yb.cpu().numpy())
    return np.concatenate(outs), np.concatenate(labels)


def validate(
    runner: Runner, job: ExportJob, *, what: str, precision: str
) -> dict[str, Any]:
    """Run the artifact on the validation images PyTorch's reference logits come from (all of
    them unless ``export.validate_samples`` asks for fewer) and compare; raise on mismatch."""
    n = job.torch_logits.shape[0]
    out, labels = run_validation(runner, job.data, n)
    ref = job.torch_logits.numpy()
    diff = np.abs(out - ref)
    pred, ref_pred = out.argmax(1), ref.argmax(1)
    parity = {
        "samples": int(n),
        "of": int(job.data.num_val),  # all validation images: samples < of means a subset (labelled as such)
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float((pred == ref_pred).mean()),
        "accuracy": round(float((pred == labels).mean() * 100), 3),
        "torch_accuracy": round(float((ref_pred == labels).mean() * 100), 3),
        "runtime": f"{runner.runtime} {runner.version}",
    }
    cfg = job.cfg
    if precision == "fp32":
        ok = parity["max_abs_diff"] <= cfg.atol and parity["top1_agreement"] >= cfg.min_top1_agreement
        rule = f"max |diff| ≤ {cfg.atol} and top-1 agreement ≥ {cfg.min_top1_agreement}"
    else:
        gap = parity["torch_accuracy"] - parity["accuracy"]
        parity["accuracy_gap"] = round(gap, 3)
        only_torch = int(((ref_pred == labels) & (pred != labels)).sum())
        only_runtime = int(((pred == labels) & (ref_pred != labels)).sum())
        parity["p_value"] = round(sign_test_p(only_torch, only_runtime), 5)
        ok = gap <= cfg.max_accuracy_gap or parity["p_value"] >= SIGNIFICANCE
        rule = (f"accuracy within {cfg.max_accuracy_gap} points of PyTorch, or the loss not significant "
                f"(sign test on the images only one of them gets right, p ≥ {SIGNIFICANCE})")
    parity["passed"] = bool(ok)
    if not ok:
        raise ExportError(
            f"{what} disagrees with PyTorch on {n} validation images: "
            f"accuracy {parity['accuracy']:.2f}% ({runner.runtime}) vs {parity['torch_accuracy']:.2f}% (PyTorch), "
            f"max |diff| {parity['max_abs_diff']:.3g}, top-1 agreement {parity['top1_agreement']:.3f}"
                + (f", sign-test p {parity['p_value']:.2g}" if "p_value" in parity else "") + " "
            f"(rule: {rule})",
            hint="the file is kept for inspection; try another opset (export.opset), keep sensitive "
            "layers in float (quantize.ignored_scope), or loosen export.atol / export.max_accuracy_gap",
        )
    return parity
