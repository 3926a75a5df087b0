"""Distill: train the student from the teacher with the shared trainer.

With ``compare_baseline`` the same student is also trained without the teacher (same
seed, epochs, optimizer, augmentation; labels only), so the report can say what
distillation bought on this data instead of assuming it helped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from edgekd.core.config import LossTerm, ModelRef
from edgekd.core.errors import ModelError
from edgekd.models.artifact import ModelSpec, save_model
from edgekd.models.build import build_model
from edgekd.models.checkpoint import load_weights
from edgekd.models.names import display_name
from edgekd.models.stats import count_params, model_stats
from edgekd.reporting.schema import ModelRow
from edgekd.reporting.sections import Section, trained_model_section
from edgekd.stages.base import RunContext, Stage, StageResult, warn_if_larger_than_teacher
from edgekd.train.effects import distillation_effects
from edgekd.train.evaluate import predict
from edgekd.train.trainer import train


def student_ref(ctx: RunContext) -> ModelRef:
    """The configured student, or the architecture the search stage chose."""
    search = ctx.results.get("search")
    if search is not None and "choice" in search.artifacts:
        choice = json.loads(Path(search.artifacts["choice"]).read_text())
        return ModelRef(model=choice["model"], kwargs=choice.get("kwargs", {}))
    if ctx.config.student is None:
        raise ModelError("no student: none configured and no search result in this run",
                         hint="set student: {model: <timm name>} or add 'search' to stages")
    return ctx.config.student


class DistillStage(Stage):
    name = "distill"

    def settings(self, ctx: RunContext) -> Any:
        student = ctx.config.student.model_dump(mode="json") if ctx.config.student else None
        return {"distill": ctx.config.distill.model_dump(mode="json"), "student": student,
                "seed": ctx.config.seed, "data": ctx.data.fingerprint()}

    def section(self, result: StageResult) -> Section:
        """The student, and (when measured) its no-teacher baseline and what KD gained."""
        m = result.metrics
        sec = trained_model_section("distill", "student", m)
        if "baseline" in m:
            sec.models.append(ModelRow(label="baseline", model=m["model"], kwargs=m.get("kwargs") or {},
                                       accuracy=m["baseline"]["accuracy"],
                                       params=m.get("params"), macs=m.get("macs"), stage="distill (no teacher)"))
            if m["baseline"].get("history"):
                sec.histories["student without teacher"] = m["baseline"]["history"]
            sec.comparisons["distillation"] = {
                "student": m["model"], "with_teacher": m["accuracy"], "without_teacher": m["baseline"]["accuracy"],
                "gain_points": m["kd_gain"], "teacher": m.get("teacher_accuracy"), "epochs": len(m["history"]),
            }
        if m.get("effects"):
            sec.distillation_effects = m["effects"]
        return sec

    @staticmethod
    def _effects(ctx: RunContext, student: torch.nn.Module, baseline: torch.nn.Module | None) -> dict[str, Any]:
        """Calibration (ECE) and per-class accuracy of teacher, student and baseline on every
        validation image: what distillation changed beyond top-1 (train/effects.py)."""
        models = {"teacher": ctx.teacher() if "teacher" in ctx.model_dirs() else None,
                  "student": student, "baseline": baseline}
        logits, labels = {}, None
        for name, model in models.items():
            if model is not None:
                logits[name], labels = predict(model.to(ctx.device), ctx.device_data, ctx.device)
        assert labels is not None
        return distillation_effects(logits, labels, ctx.data.class_names)

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.distill
        ref = student_ref(ctx)
        data = ctx.device_data
        teacher = ctx.teacher() if cfg.uses_teacher else None
        key = "search.space" if "search" in ctx.results else "student.model"

        def fresh():  # seeded: the same initial weights for the KD student and its no-teacher baseline
            torch.manual_seed(ctx.config.seed)
            m = build_model(ref.model, data.num_classes, ref.kwargs, what=key)
            if ref.checkpoint:
                load_weights(m, ref.checkpoint, num_classes=data.num_classes, what="student checkpoint")
            return m

        student = fresh()
        teacher_params = ctx.results["teacher"].metrics.get("params") if "teacher" in ctx.results else None
        warn_if_larger_than_teacher(ctx, "distill", count_params(student), teacher_params, key)
        losses = "+".join(t.name for t in cfg.loss)
        name = display_name(ref.model, ref.kwargs)
        ctx.reporter.line(f"[cyan]distill[/]: {escape(name)} from the teacher ({losses}, {cfg.epochs} epochs)")
        result = train(student, data, cfg, teacher=teacher, device=ctx.device, seed=ctx.config.seed,
                       reporter=ctx.reporter, label=f"distill {name}")
        teacher_acc = ctx.results["teacher"].metrics.get("accuracy") if "teacher" in ctx.results else None
        metrics: dict[str, Any] = {"model": ref.model, "kwargs": ref.kwargs, "loss": [t.spec() for t in cfg.loss],
                                   **result.metrics(), **model_stats(student, data.image_size),
                                   "teacher_accuracy": teacher_acc}
        spec = ModelSpec(ref.model, data.num_classes, dict(ref.kwargs), data.preprocessing(), role="student",
                         info={"accuracy": metrics["accuracy"]})
        artifacts = {"model:student": save_model(student, spec, out / "model")}
        baseline = None
        if cfg.compare_baseline:
            base_cfg = cfg.model_copy(update={"loss": [LossTerm(name="ce")]})
            baseline = fresh()
            base = train(baseline, data, base_cfg, device=ctx.device, seed=ctx.config.seed,
                         reporter=ctx.reporter, label=f"baseline {name} (no teacher)")
            metrics["baseline"] = {"loss": "ce", **base.metrics()}
            metrics["kd_gain"] = round(result.best_accuracy - base.best_accuracy, 3)
            artifacts["baseline"] = save_model(baseline, ModelSpec(**{**spec.__dict__, "role": "baseline",
                                               "info": {"accuracy": base.best_accuracy}}), out / "baseline")
        metrics["effects"] = self._effects(ctx, student, baseline)
        gain = f", baseline without teacher {metrics['baseline']['accuracy']:.2f}%" if cfg.compare_baseline else ""
        ctx.reporter.line(f"[green]distill[/]: {escape(name)} {metrics['accuracy']:.2f}%{gain}")
        return StageResult(metrics, artifacts)
