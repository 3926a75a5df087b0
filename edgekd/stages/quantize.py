"""Quantize: INT8 with the full-precision teacher supervising (quantized distillation).

Polino, Pascanu & Alistarh (ICLR 2018): QAT whose loss includes the teacher's soft
targets. NNCF inserts fake-quantizers and calibrates them (that alone is PTQ, recorded
as such), then the shared trainer fine-tunes the quantized student against the FP32
teacher. ``method: ptq`` stops after calibration. QAT never ships below PTQ: the calibrated
state is kept aside, and when the fine-tuned model (its best epoch) ends below it, the
calibrated model is restored and saved instead (``kept: ptq``, with the reason); on a
converged student a too-strong QAT can lose a point that calibration alone kept. The
stage takes the run's latest model (pruned or distilled) or ``student.checkpoint``. Exports (ONNX Q/DQ, OpenVINO INT8) and
their accuracy in their own runtimes come from the export stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from edgekd.core import dist
from edgekd.core.errors import QuantizationError
from edgekd.engines.models.artifact import ModelSpec, load_model, reload_outputs, save_model
from edgekd.engines.models.names import display_name
from edgekd.engines.quantization.kernels import select_kernels
from edgekd.engines.quantization.nncf_int8 import (
    CalibrationLog,
    calibration_batches,
    quantized_layers,
    quantizer_config,
)
from edgekd.engines.quantization.recipe import apply_recipe
from edgekd.engines.reporting.sections import Section, trained_model_section
from edgekd.engines.train.evaluate import evaluate
from edgekd.engines.train.policy import kd_adapted
from edgekd.engines.train.trainer import train
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext, shipped_by_distill
from edgekd.stages.outputs import QuantizeOutput


class QuantizeStage(Stage):
    name = "quantize"

    def settings(self, ctx: RunContext) -> Any:
        return {"quantize": ctx.config.quantize.model_dump(mode="json"), "seed": ctx.config.seed,
                "preset": ctx.plan.quantizer.preset, "overflow_fix": ctx.plan.quantizer.overflow_fix,
                "student": ctx.config.student.model_dump(mode="json") if ctx.config.student else None}

    def section(self, result: StageResult) -> Section:
        return trained_model_section("quantize", "quantized", result.output.as_dict(), comparison_key="quantize")

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.quantize
        src_label, folder = ctx.input_student(out)
        model, spec = load_model(folder)
        if spec.quantization is not None:
            raise QuantizationError(f"the input model ({src_label}) is already quantized")
        data, device = ctx.device_data, ctx.device
        model.to(device)
        fp32_acc = evaluate(model, data, device)
        plan = ctx.plan.quantizer
        preset, overflow_fix, why = plan.preset, plan.overflow_fix, plan.overflow_reason
        calib_x, _ = data.train_sample(cfg.calibration_size, ctx.config.seed)
        calib = calibration_batches(data.normalize(calib_x), cfg.calibration_size)
        name = display_name(spec.model, spec.kwargs)
        ctx.reporter.line(f"[cyan]quantize[/]: {escape(name)} ({src_label}) INT8 {cfg.method.upper()}, "
                          f"{preset} preset; overflow fix {overflow_fix} ({escape(why)})")
        nncf_log = CalibrationLog()
        qmodel, folded = apply_recipe(model, calib, plan.recipe(), quiet=ctx.reporter.quiet, log_to=nncf_log)
        ctx.reporter.line(f"[cyan]quantize[/]: NNCF calibrated the INT8 ranges on {nncf_log.images} images "
                          f"({nncf_log.batches} batches) in {nncf_log.seconds:.1f} s")
        for w in nncf_log.warnings:
            ctx.reporter.warn("quantize", f"NNCF: {w}")
        ptq_acc = evaluate(qmodel, data, device)
        metrics: dict[str, Any] = {"model": spec.model, "kwargs": spec.kwargs, "input": src_label, "method": cfg.method,
                                   "preset": preset, "per_channel": cfg.per_channel,
                                   "overflow_fix": overflow_fix, "overflow_fix_reason": why,
                                   "ignored_scope": cfg.ignored_scope, "nncf_kernels": select_kernels(),
                                   "batchnorm_folded": len(folded), "calibration_images": nncf_log.images,
                                   "fp32_accuracy": round(fp32_acc, 3),
                                   "ptq_accuracy": round(ptq_acc, 3)}
        if cfg.method == "qat":
            self._qat(ctx, qmodel, name, metrics, ptq_acc)
        else:
            metrics.update(accuracy=metrics["ptq_accuracy"], kept="ptq", reason="method: ptq (calibration only)")
        qmodel.eval()
        qcfg = quantizer_config(qmodel)
        new_spec = ModelSpec(spec.model, spec.num_classes, spec.kwargs, spec.input,
                             pruning_history=spec.pruning_history, role="quantized",
                             quantization={"method": metrics["kept"], "preset": metrics["preset"],
                                           "overflow_fix": overflow_fix,
                                           "per_channel": cfg.per_channel, "ignored_scope": cfg.ignored_scope,
                                           "folded_batchnorm": [list(p) for p in folded], "nncf_config": qcfg},
                             info={"accuracy": metrics["accuracy"]})
        saved = save_model(qmodel.cpu(), new_spec, out / "model")
        self._check_reload(qmodel, saved, spec.example_input(4))
        metrics["quantizers"] = len(quantized_layers(qcfg))
        metrics["comparison"] = {
            "fp32": metrics["fp32_accuracy"], "ptq": metrics["ptq_accuracy"], "int8": metrics["accuracy"],
            "kept": metrics["kept"], "preset": preset, "overflow_fix": overflow_fix, "overflow_fix_reason": why,
            "summary": _summary(metrics, fp32_acc, ptq_acc) + (f"; {why}" if overflow_fix == "enable" else ""),
        }
        ctx.reporter.line(f"[green]quantize[/]: {escape(metrics['comparison']['summary'])}")
        return StageResult(QuantizeOutput(**metrics), {"model:quantized": saved})

    @staticmethod
    def _qat(ctx: RunContext, qmodel: torch.nn.Module, name: str, metrics: dict[str, Any], ptq_acc: float) -> None:
        """Fine-tune the calibrated model with the teacher; restore the calibrated state if QAT ends below it.

        The trainer ends on its best epoch and reports that epoch's accuracy, so the
        comparison is between the two models that can be saved. Under torchrun every rank
        computes the same accuracies (evaluate sums over ranks); rank 0's decision is
        broadcast anyway, so no rank can save a different model.
        """
        cfg = ctx.config.quantize
        ptq_state = {k: v.detach().clone() for k, v in qmodel.state_dict().items()}  # NNCF ranges included
        tuning, adapted = kd_adapted(shipped_by_distill(ctx), cfg.train)
        if adapted:
            ctx.reporter.line(f"[yellow]quantize[/]: {escape(adapted)}")
            metrics["loss_adapted"] = adapted
        teacher = ctx.teacher() if tuning.uses_teacher else None
        result = train(qmodel, ctx.device_data, tuning, teacher=teacher, device=ctx.device, seed=ctx.config.seed,
                       reporter=ctx.reporter, label=f"QAT {name}")
        metrics.update(result.metrics())
        metrics["loss"] = [t.spec() for t in tuning.loss]
        choice = dist.broadcast(keep_better(result.best_accuracy, ptq_acc))
        if choice.kept == "ptq":
            qmodel.load_state_dict(ptq_state)
        metrics.update(choice.metrics())

    @staticmethod
    def _check_reload(model, folder: Path, example: torch.Tensor) -> None:
        a, b = reload_outputs(model, folder, example)
        if not torch.allclose(a, b, atol=1e-5):
            raise QuantizationError(f"the quantized model in {folder} does not reload to the same outputs "
                                    f"(max diff {float((a - b).abs().max()):.3g})")


@dataclass(frozen=True)
class Kept:
    """Which INT8 model the stage saves, and why (plain data: broadcast to every rank)."""

    kept: str  # qat | ptq
    accuracy: float
    qat_accuracy: float
    reason: str

    def metrics(self) -> dict[str, Any]:
        return {"kept": self.kept, "accuracy": round(self.accuracy, 3), "qat_accuracy": round(self.qat_accuracy, 3),
                "reason": self.reason}


def keep_better(qat_acc: float, ptq_acc: float) -> Kept:
    """QAT unless it ends below the calibrated model it started from (a tie keeps QAT)."""
    if qat_acc < ptq_acc:
        return Kept("ptq", ptq_acc, qat_acc, f"QAT {qat_acc:.2f}% < PTQ {ptq_acc:.2f}%: kept the calibrated model")
    return Kept("qat", qat_acc, qat_acc, f"QAT {qat_acc:.2f}% >= PTQ {ptq_acc:.2f}%: kept the QAT model")


def _summary(metrics: dict[str, Any], fp32_acc: float, ptq_acc: float) -> str:
    """One line for the terminal and the report: what was saved, against FP32, and why."""
    acc, kept = metrics["accuracy"], metrics["kept"]
    head = f"INT8 {kept.upper()} {acc:.2f}% vs FP32 {fp32_acc:.2f}% ({acc - fp32_acc:+.2f} points)"
    if "qat_accuracy" in metrics:
        return f"{head}; {metrics['reason']}"
    return f"{head}; calibration only (method: ptq)"
