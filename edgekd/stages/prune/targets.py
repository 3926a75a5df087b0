"""What pruning aims at: MACs, parameters, latency on the first target, or a speed-up over
the teacher on every target. Each kind is a measure of the model and a final value; the
steps follow a geometric path from the start value to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgekd.core.budgets import TargetBudget
from edgekd.engines.latency.oracle import LatencyOracle
from edgekd.engines.pruning.structured import size_measure
from edgekd.stages.context import RunContext
from edgekd.stages.prune.latency import Latencies, time_targets

SEARCH_REPEATS = 15  # timing repeats inside the micro-step search (the step's own check uses 30)


@dataclass
class PruneGoal:
    kind: str  # macs | params | latency | speedup
    measure: Callable[[nn.Module], float]
    start: float
    final: float
    budgets: dict[str, TargetBudget] = field(default_factory=dict)  # speedup: the limit per target

    def describe(self, value: float) -> str:
        if self.kind == "latency":
            return f"{value:.3f} ms"
        if self.kind == "speedup":
            return f"latency/budget {value:.3f}"
        return f"{value / 1e6:.3f}M"

    def record(self) -> dict[str, Any]:
        """The target as the metrics keep it."""
        if self.kind == "speedup":
            return {"speedup": {n: b.as_dict() for n, b in self.budgets.items()}}
        return {self.kind: self.final}


def prune_goal(ctx: RunContext, model: nn.Module, size: int, latency: Latencies) -> PruneGoal:
    """The configured target; ``latency``: the input model's latency per target (speedup starts there)."""
    cfg = ctx.config.prune
    budgets = ctx.budgets().prune  # prune.speedup's limits, resolved with the run's budgets
    if budgets:
        return PruneGoal("speedup", speedup_measure(ctx, size, budgets), worst_ratio(latency, budgets), 1.0, budgets)
    if cfg.latency_ms is not None:
        oracle = LatencyOracle(ctx.targets[0], threads=ctx.config.bench.threads)

        def ms(m: nn.Module) -> float:
            return oracle(m, size).ms

        return PruneGoal("latency", ms, ms(model), cfg.latency_ms)
    kind = "macs" if cfg.flops_ratio is not None else "params"
    ratio = cfg.flops_ratio if kind == "macs" else cfg.params_ratio
    assert ratio is not None
    measure = size_measure(kind, size)
    start = measure(model)
    return PruneGoal(kind, measure, start, start / ratio)


def worst_ratio(latency: Latencies, budgets: dict[str, TargetBudget]) -> float:
    """max over targets of latency / limit: at most 1 when every target is within its budget."""
    return max(latency[n]["ms"] / b.ms for n, b in budgets.items() if b.ms)


def speedup_measure(ctx: RunContext, size: int, budgets: dict[str, TargetBudget]) -> Callable[[nn.Module], float]:
    return lambda m: worst_ratio(time_targets(ctx, m, size, repeats=SEARCH_REPEATS), budgets)


def unreachable(goal: PruneGoal, step_goal: float, value: float, latency: Latencies | None) -> str:
    """Why the goal could not be reached, naming the binding target, its budget and basis."""
    if goal.kind == "speedup" and latency:
        name = max(goal.budgets, key=lambda n: latency[n]["ms"] / (goal.budgets[n].ms or float("inf")))
        b = goal.budgets[name]
        return (f"could not reach prune.speedup {b.speedup:g}: on {name} the latency stopped at "
                f"{latency[name]['ms']:.4g} ms ({latency[name]['kind']}), over the budget {b.ms:.4g} ms "
                f"({b.basis}), after removing the most torch-pruning allows")
    return (f"could not reach {goal.kind} {goal.describe(step_goal)}: stopped at {goal.describe(value)} "
            f"after removing the most torch-pruning allows")
