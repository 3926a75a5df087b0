"""Prune: remove whole channels to a MACs, parameter, latency or speed-up target, then
recover accuracy by distillation from the teacher with the shared trainer, in N steps.

After every cut the model is timed on every target (``prune.latency_check``); a step that
did not make it faster is undone and pruning stops there, because fewer MACs is not fewer
milliseconds (see edgekd/engines/pruning/payoff.py). The check runs right after the cut, before
the fine-tune: fine-tuning changes weights, not shapes, so it cannot change the latency,
and an undone step costs no training. After every kept step the accuracy (right after
pruning, and after fine-tuning), MACs, parameters and latency per target are recorded.
The pruned model is saved as its base architecture plus torch-pruning's plain-data
pruning history, so it reloads without unpickling code; when not even the first step
paid, the input model is saved as the pruned one (no history) and the metrics say so.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from edgekd.core import dist
from edgekd.core.config import TrainConfig
from edgekd.core.errors import PruningError
from edgekd.core.registries import IMPORTANCES
from edgekd.engines.models.artifact import ModelSpec, load_model, reload_outputs, save_model
from edgekd.engines.models.names import display_name
from edgekd.engines.models.pruned import replay_pruning
from edgekd.engines.models.stats import count_macs, count_params
from edgekd.engines.pruning.structured import ChannelPruner
from edgekd.engines.reporting.sections import Section, trained_model_section
from edgekd.engines.train.evaluate import evaluate
from edgekd.engines.train.policy import kd_adapted
from edgekd.engines.train.trainer import loss_gradients, train
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext, shipped_by_distill
from edgekd.stages.outputs import PruneOutput
from edgekd.stages.prune.latency import Latencies, describe, judge_step, shared_latency
from edgekd.stages.prune.targets import PruneGoal, prune_goal, unreachable

HINT = "ask for less (prune.flops_ratio / params_ratio / latency_ms / speedup) or ignore fewer layers"


@dataclass
class Walk:
    """Where the pruning steps ended: the model, its new pruning history, the steps kept, and why
    pruning stopped (None: every step paid)."""

    model: Any
    history: list[Any]
    steps: list[dict[str, Any]]
    stopped: dict[str, Any] | None = None


class PruneStage(Stage):
    name = "prune"

    def settings(self, ctx: RunContext) -> Any:
        cfg = ctx.config.prune
        timed = cfg.latency_check or cfg.latency_ms is not None or cfg.speedup is not None
        return {"prune": cfg.model_dump(mode="json"), "seed": ctx.config.seed,
                "student": ctx.config.student.model_dump(mode="json") if ctx.config.student else None,
                "channel_rounding": ctx.plan.channel_rounding,
                "targets": [t.model_dump(mode="json") for t in ctx.targets] if timed else None}

    def section(self, result: StageResult) -> Section:
        assert isinstance(result.output, PruneOutput)
        sec = trained_model_section("prune", "pruned", result.output.as_dict(), comparison_key="prune")
        sec.pruning = result.output.steps_summary
        return sec

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.prune
        src_label, folder = ctx.input_student(out)
        model, spec = load_model(folder)
        if spec.quantization is not None:
            raise PruningError("the input model is already quantized: prune before quantize",
                               hint="list the stages as [..., prune, quantize, ...]")
        data, device = ctx.device_data, ctx.device
        model.to(device)
        finetune, adapted = kd_adapted(shipped_by_distill(ctx), cfg.finetune)
        if adapted:
            ctx.reporter.line(f"[yellow]prune[/]: {escape(adapted)}")
        teacher = ctx.teacher() if finetune.uses_teacher else None
        if teacher is not None:
            teacher.to(device)
        size = spec.input_size
        timed = cfg.latency_check or cfg.latency_ms is not None or cfg.speedup is not None
        latency = shared_latency(ctx, model.eval(), size) if timed else {}
        goal = prune_goal(ctx, model, size, latency)
        base: dict[str, Any] = {"accuracy": round(evaluate(model, data, device), 3), "macs": count_macs(model, size),
                                "params": count_params(model)}
        if latency:
            base["latency"] = latency
        pruner = self._pruner(ctx, model, spec.example_input(1).to(device), teacher, finetune)
        name = escape(display_name(spec.model, spec.kwargs))
        ctx.reporter.line(f"[cyan]prune[/]: {name} ({src_label}) to {goal.kind} {goal.describe(goal.final)} "
                          f"in {cfg.steps} steps, importance {cfg.importance.name}, "
                          f"fine-tune {'+'.join(t.name for t in finetune.loss)}, "
                          f"channels in multiples of {ctx.plan.channel_rounding or 1}")
        walk = self._steps(ctx, model, pruner, goal, (teacher, finetune), spec, base)
        model, history, steps, stopped = walk.model, walk.history, walk.steps, walk.stopped
        model.eval()
        info = {"accuracy": steps[-1]["accuracy"] if steps else base["accuracy"]}
        new_spec = ModelSpec(spec.model, spec.num_classes, spec.kwargs, spec.input,
                             pruning_history=[*(spec.pruning_history or []), *history], role="pruned", info=info)
        saved = save_model(model, new_spec, out / "model")
        self._check_reload(model, saved, spec.example_input(1).to(device))
        metrics = self._metrics(ctx, spec.model, src_label, goal, base, steps, stopped, finetune)
        if adapted:
            metrics["finetune_adapted"] = adapted
        return StageResult(PruneOutput(**metrics, kwargs=spec.kwargs), {"model:pruned": saved})

    def _steps(self, ctx: RunContext, model, pruner: ChannelPruner, goal: PruneGoal, tuning: tuple[Any, TrainConfig],
               spec: ModelSpec, base: dict[str, Any]) -> Walk:
        """The pruning steps on a geometric path to the goal; stops at the first step that did
        not pay (undone)."""
        cfg = ctx.config.prune
        size, example = spec.input_size, spec.example_input(1).to(ctx.device)
        steps: list[dict[str, Any]] = []
        history: list[Any] = []
        before: Latencies = base.get("latency", {})
        if goal.start <= goal.final:
            reason = f"the input already meets {goal.kind} {goal.describe(goal.final)} ({goal.describe(goal.start)})"
            ctx.reporter.warn("prune", f"{reason}: nothing to prune, the input model is kept")
            return Walk(model, history, steps, {"step": 0, "reason": reason, "steps_kept": 0})
        for k in range(1, cfg.steps + 1):
            step_goal = goal.start * (goal.final / goal.start) ** (k / cfg.steps)  # geometric path to the goal
            kept = (copy.deepcopy(model), list(history)) if cfg.latency_check else None
            model.eval()
            reached, cut = self._cut(pruner, model, lambda g=step_goal: goal.measure(model) <= g, len(history),
                                     example)
            history += cut
            short = None
            if not reached:
                now = shared_latency(ctx, model, size) if goal.kind == "speedup" else None
                why = unreachable(goal, step_goal, goal.measure(model) if now is None else 0, now)
                if goal.kind in ("latency", "speedup") or not (cut or steps):  # a latency budget is a requirement
                    raise PruningError(why, hint=HINT)
                # a size ratio is a recipe: keep the deepest cut there is (e.g. a teacher already pruned to the budget)
                short = {"step": k, "reason": why, "steps_kept": k if cut else k - 1}
                ctx.reporter.warn("prune", f"{why}: " + ("this cut is kept and pruning stops after it" if cut
                                                           else f"pruning stops at step {k - 1}'s model"))
                if not cut:
                    return Walk(model, history, steps, short)
            # An empty cut: an earlier one, in whole channel blocks, already reached this step's goal. The
            # same model is not timed against itself (a coin toss whose "not faster" would stop pruning there).
            if cut and kept is not None:
                decision = judge_step(ctx, kept[0], model, size, before)
                if not decision["pays"]:
                    return Walk(*kept, steps, self._stop(ctx, k, decision, kept=k - 1))
                before = decision["after"]
            elif cut and before:
                before = shared_latency(ctx, model, size)
            steps.append(self._finetune_step(ctx, model, tuning, k, size, before))
            steps[-1]["cut"] = bool(cut)
            ctx.reporter.line(f"[green]prune[/]: step {k}/{cfg.steps}: MACs {steps[-1]['macs'] / 1e6:.2f}M "
                              f"({base['macs'] / steps[-1]['macs']:.2f}× fewer), "
                              f"{steps[-1]['accuracy_after_pruning']:.2f}% → {steps[-1]['accuracy']:.2f}%"
                              + (f", {escape(describe(before))}" if before else "")
                              + ("" if cut else f" (nothing to cut: step {k - 1} already reached this step's "
                                                "target; fine-tuned further)"))
            if short is not None:
                return Walk(model, history, steps, short)
        return Walk(model, history, steps)

    @staticmethod
    def _stop(ctx: RunContext, k: int, decision: dict[str, Any], *, kept: int) -> dict[str, Any]:
        """Say why pruning stopped (terminal and metrics); ``kept``: steps that paid."""
        what = f"back to step {kept}'s model" if kept else "pruning did not pay: the unpruned input is kept"
        ctx.reporter.warn("prune", f"step {k}/{ctx.config.prune.steps} did not pay ({decision['reason']}); "
                                   f"undone and pruning stopped, {what}")
        return {"step": k, "reason": decision["reason"], "steps_kept": kept,
                "latency_before": decision.get("before"), "latency_after": decision.get("after")}

    @staticmethod
    def _cut(pruner: ChannelPruner, model, reached, done: int, example) -> tuple[bool, list[Any]]:
        """One pruning step. Under torchrun rank 0 decides (importance, latency checks) and
        broadcasts what it cut; the other ranks replay it, so every rank prunes identically."""
        w = dist.world()
        if w.main:
            ok = pruner.step_until(reached)
            decision = (ok, pruner.history()[done:])
        decision = dist.broadcast(decision if w.main else None)
        if not w.main:
            replay_pruning(model, decision[1], example)
        return decision

    @staticmethod
    def _pruner(ctx: RunContext, model, example, teacher, finetune: TrainConfig) -> ChannelPruner:
        """torch-pruning's pruner with the configured importance (gradients from the fine-tune loss)
        and the plan's channel rounding."""
        cfg = ctx.config.prune
        criterion = IMPORTANCES.get(cfg.importance.name)(cfg.importance.params)
        grad_fn = None
        if criterion.needs_gradients:
            def grad_fn(m):  # noqa: ANN001 - the pruner passes the model being pruned
                loss_gradients(m, ctx.device_data, finetune, teacher=teacher, batches=criterion.batches,
                               seed=ctx.config.seed)

        return ChannelPruner(model, example, importance=criterion.build(), global_pruning=cfg.global_pruning,
                             ignored=cfg.ignored_layers, skip_unsupported=cfg.skip_unsupported,
                             round_to=ctx.plan.channel_rounding, gradient_fn=grad_fn)

    @staticmethod
    def _finetune_step(ctx: RunContext, model, tuning: tuple[Any, TrainConfig], k: int, size: int,
                       latency: Latencies) -> dict[str, Any]:
        """Accuracy right after the cut, then recovered by distillation; MACs, params, latency per target."""
        cfg = ctx.config.prune
        data, device = ctx.device_data, ctx.device
        pruned_acc = evaluate(model, data, device)
        teacher, finetune = tuning
        result = train(model, data, finetune, teacher=teacher, device=device, seed=ctx.config.seed + k,
                       reporter=ctx.reporter, label=f"prune step {k}/{cfg.steps} fine-tune")
        row = {"step": k, "macs": count_macs(model, size), "params": count_params(model),
               "accuracy_after_pruning": round(pruned_acc, 3), "accuracy": round(result.best_accuracy, 3),
               "history": result.history}
        if latency:
            row["latency"] = latency
        return row

    @staticmethod
    def _metrics(ctx: RunContext, model_name: str, src_label: str, goal: PruneGoal, base: dict[str, Any],
                 steps: list[dict[str, Any]], stopped: dict[str, Any] | None,
                 finetune: TrainConfig) -> dict[str, Any]:
        cfg = ctx.config.prune
        last = steps[-1] if steps else base
        summary = {"base": base, "steps": [{k: v for k, v in s.items() if k != "history"} for s in steps],
                   "channel_rounding": ctx.plan.channel_rounding}
        if stopped:
            summary["stopped"] = stopped
        return {
            "model": model_name, "input": src_label, "target": goal.record(), "importance": cfg.importance.spec(),
            "finetune_loss": [t.spec() for t in finetune.loss], "base": base,
            "accuracy": last["accuracy"], "macs": last["macs"], "params": last["params"],
            "macs_reduction": round(base["macs"] / last["macs"], 3),
            "params_reduction": round(base["params"] / last["params"], 3),
            "steps": steps, "history": [h for s in steps for h in s["history"]], "stopped": stopped,
            "channel_rounding": ctx.plan.channel_rounding, "steps_summary": summary,
        }

    @staticmethod
    def _check_reload(model, folder: Path, example) -> None:
        """The saved artifact must rebuild to the same outputs (shapes replayed, tensors only)."""
        import torch

        a, b = reload_outputs(model, folder, example)
        if not torch.allclose(a, b, atol=1e-4, rtol=1e-4) or not math.isfinite(float(a.abs().max())):
            raise PruningError(f"the pruned model saved in {folder} does not reload to the same outputs "
                               f"(max diff {float((a - b).abs().max()):.3g})")
