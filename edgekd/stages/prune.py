"""Prune: remove whole channels to a MACs, parameter or latency target, then recover
accuracy by distillation from the teacher with the shared trainer, in N steps.

After every step the accuracy (right after pruning, and after fine-tuning) and the MACs,
parameters and latency are recorded. The pruned model is saved as its base architecture
plus torch-pruning's plain-data pruning history, so it reloads without unpickling code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.markup import escape

from edgekd.core import dist
from edgekd.core.errors import PruningError
from edgekd.core.registries import IMPORTANCES
from edgekd.latency.oracle import LatencyOracle
from edgekd.models.artifact import ModelSpec, load_model, reload_outputs, save_model
from edgekd.models.names import display_name
from edgekd.models.pruned import replay_pruning
from edgekd.models.stats import count_macs, count_params
from edgekd.pruning.structured import ChannelPruner, size_measure
from edgekd.reporting.sections import Section, trained_model_section
from edgekd.stages.base import RunContext, Stage, StageResult
from edgekd.train.evaluate import evaluate
from edgekd.train.trainer import loss_gradients, train


class PruneStage(Stage):
    name = "prune"

    def settings(self, ctx: RunContext) -> Any:
        return {"prune": ctx.config.prune.model_dump(mode="json"), "seed": ctx.config.seed,
                "student": ctx.config.student.model_dump(mode="json") if ctx.config.student else None,
                "targets": [t.model_dump(mode="json") for t in ctx.targets] if ctx.config.prune.latency_ms else None}

    def section(self, result: StageResult) -> Section:
        sec = trained_model_section("prune", "pruned", result.metrics, comparison_key="prune")
        sec.pruning = result.metrics.get("steps_summary", {})
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
        teacher = ctx.teacher() if cfg.finetune.uses_teacher else None
        if teacher is not None:
            teacher.to(device)
        size = spec.input_size
        kind, measure, final, oracle = self._target(ctx, model, size)
        start_value = measure(model)
        base = {"accuracy": round(evaluate(model, data, device), 3), "macs": count_macs(model, size),
                "params": count_params(model)}
        if oracle is not None:
            base["latency_ms"] = start_value
        pruner = self._pruner(ctx, model, spec.example_input(1).to(device), teacher)
        name = escape(display_name(spec.model, spec.kwargs))
        ctx.reporter.line(f"[cyan]prune[/]: {name} ({src_label}) to {kind} {self._describe(kind, final)} "
                          f"in {cfg.steps} steps, importance {cfg.importance.name}, "
                          f"fine-tune {'+'.join(t.name for t in cfg.finetune.loss)}")
        steps: list[dict[str, Any]] = []
        history: list[Any] = []
        for k in range(1, cfg.steps + 1):
            goal = start_value * (final / start_value) ** (k / cfg.steps)  # geometric path to the target
            model.eval()
            reached, cut = self._cut(pruner, model, lambda g=goal: measure(model) <= g, len(history),
                                     spec.example_input(1).to(device))
            history += cut
            if not reached:
                raise PruningError(
                    f"could not reach {kind} {self._describe(kind, goal)}: stopped at {measure(model):.4g} "
                    f"after removing the most torch-pruning allows",
                    hint="ask for less (prune.flops_ratio / params_ratio / latency_ms) or ignore fewer layers")
            steps.append(self._finetune_step(ctx, model, teacher, k, size, oracle))
            ctx.reporter.line(f"[green]prune[/]: step {k}/{cfg.steps}: MACs {steps[-1]['macs'] / 1e6:.2f}M "
                              f"({base['macs'] / steps[-1]['macs']:.2f}× fewer), "
                              f"{steps[-1]['accuracy_after_pruning']:.2f}% → {steps[-1]['accuracy']:.2f}%")
        model.eval()
        new_spec = ModelSpec(spec.model, spec.num_classes, spec.kwargs, spec.input,
                             pruning_history=[*(spec.pruning_history or []), *history],
                             role="pruned", info={"accuracy": steps[-1]["accuracy"]})
        saved = save_model(model, new_spec, out / "model")
        self._check_reload(model, saved, spec.example_input(1).to(device))
        return StageResult({**self._metrics(ctx, spec.model, src_label, {kind: final}, base, steps),
                            "kwargs": spec.kwargs},
                           {"model:pruned": saved})

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
    def _pruner(ctx: RunContext, model, example, teacher) -> ChannelPruner:
        """torch-pruning's pruner with the configured importance (gradients from the fine-tune loss)
        and the plan's channel rounding."""
        cfg = ctx.config.prune
        criterion = IMPORTANCES.get(cfg.importance.name)(cfg.importance.params)
        grad_fn = None
        if criterion.needs_gradients:
            def grad_fn(m):  # noqa: ANN001 - the pruner passes the model being pruned
                loss_gradients(m, ctx.device_data, cfg.finetune, teacher=teacher, batches=criterion.batches,
                               seed=ctx.config.seed)

        return ChannelPruner(model, example, importance=criterion.build(), global_pruning=cfg.global_pruning,
                             ignored=cfg.ignored_layers, skip_unsupported=cfg.skip_unsupported,
                             round_to=ctx.plan.channel_rounding, gradient_fn=grad_fn)

    @staticmethod
    def _finetune_step(ctx: RunContext, model, teacher, k: int, size: int, oracle) -> dict[str, Any]:
        """Accuracy right after the cut, then recovered by distillation; MACs, params, latency."""
        cfg = ctx.config.prune
        data, device = ctx.device_data, ctx.device
        pruned_acc = evaluate(model, data, device)
        result = train(model, data, cfg.finetune, teacher=teacher, device=device, seed=ctx.config.seed + k,
                       reporter=ctx.reporter, label=f"prune step {k}/{cfg.steps} fine-tune")
        row = {"step": k, "macs": count_macs(model, size), "params": count_params(model),
               "accuracy_after_pruning": round(pruned_acc, 3), "accuracy": round(result.best_accuracy, 3),
               "history": result.history}
        if oracle is not None and dist.world().main:  # timed by rank 0 alone (ranks share the machine)
            row["latency"] = oracle(model, size).__dict__
        return row

    @staticmethod
    def _metrics(ctx: RunContext, model_name: str, src_label: str, target: dict[str, float],
                 base: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
        cfg = ctx.config.prune
        last = steps[-1]
        return {
            "model": model_name, "input": src_label, "target": target, "importance": cfg.importance.spec(),
            "finetune_loss": [t.spec() for t in cfg.finetune.loss], "base": base,
            "accuracy": last["accuracy"], "macs": last["macs"], "params": last["params"],
            "macs_reduction": round(base["macs"] / last["macs"], 3),
            "params_reduction": round(base["params"] / last["params"], 3),
            "steps": steps, "history": [h for s in steps for h in s["history"]],
            "steps_summary": {"base": base, "steps": [{k: v for k, v in s.items() if k != "history"} for s in steps]},
        }

    @staticmethod
    def _describe(kind: str, value: float) -> str:
        return f"{value:.3f} ms" if kind == "latency" else f"{value / 1e6:.3f}M"

    def _target(self, ctx: RunContext, model, size: int):
        """(kind, measure, final value, latency oracle or None)."""
        cfg = ctx.config.prune
        if cfg.latency_ms is not None:
            target = ctx.targets[0]
            oracle = LatencyOracle(target, threads=ctx.config.bench.threads)
            return "latency", lambda m: oracle(m, size).ms, cfg.latency_ms, oracle
        kind = "macs" if cfg.flops_ratio is not None else "params"
        ratio = cfg.flops_ratio if kind == "macs" else cfg.params_ratio
        measure = size_measure(kind, size)
        assert ratio is not None
        return kind, measure, measure(model) / ratio, None

    @staticmethod
    def _check_reload(model, folder: Path, example) -> None:
        """The saved artifact must rebuild to the same outputs (shapes replayed, tensors only)."""
        import torch

        a, b = reload_outputs(model, folder, example)
        if not torch.allclose(a, b, atol=1e-4, rtol=1e-4) or not math.isfinite(float(a.abs().max())):
            raise PruningError(f"the pruned model saved in {folder} does not reload to the same outputs "
                               f"(max diff {float((a - b).abs().max()):.3g})")
