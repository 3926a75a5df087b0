"""The model's latency on every target, after every pruning step, and whether the step paid.

Each target is timed on its best runtime (``best_latency``: measured in ONNX Runtime and
OpenVINO on ``host``, predicted by the roofline elsewhere), by rank 0 alone (the ranks of a
torchrun share the machine), and rank 0's numbers and verdict are broadcast, so every rank
keeps or undoes the same step.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgekd.core import dist
from edgekd.engines.latency.budgets import best_latency
from edgekd.engines.pruning.payoff import step_verdict
from edgekd.stages.context import RunContext

Latencies = dict[str, dict[str, Any]]  # target -> LatencyEstimate as a dict


def time_targets(ctx: RunContext, model: nn.Module, size: int, *, repeats: int = 30,
                 only: set[str] | None = None) -> Latencies:
    """This process times ``model`` on every target (or those in ``only``); no collective."""
    threads = ctx.config.bench.threads
    return {p.name: best_latency(model, p, size, threads=threads, repeats=repeats).__dict__
            for p in ctx.targets if only is None or p.name in only}


def shared_latency(ctx: RunContext, model: nn.Module, size: int) -> Latencies:
    """Rank 0's timing of ``model`` on every target, on every rank."""
    return dist.broadcast(time_targets(ctx, model, size) if dist.world().main else None)


def judge_step(ctx: RunContext, previous: nn.Module, model: nn.Module, size: int,
               before: Latencies) -> dict[str, Any]:
    """Time the pruned ``model`` and judge the step against ``before`` (the previous model's
    latency). A measured target that says "did not pay" is timed again, the previous model
    and the pruned one back to back, so one noisy timing does not end the pruning."""
    decision = None
    if dist.world().main:
        after = time_targets(ctx, model, size)
        verdict = step_verdict(before, after)
        measured = {n for n, a in after.items() if a["kind"] == "measured"}
        if not verdict.pays and measured & set(verdict.slower or after):
            before = {**before, **time_targets(ctx, previous, size, only=measured)}
            after = {**after, **time_targets(ctx, model, size, only=measured)}
            verdict = step_verdict(before, after)
        decision = {"pays": verdict.pays, "reason": verdict.reason, "before": before, "after": after}
    return dist.broadcast(decision)


def describe(latency: Latencies) -> str:
    """``host 1.23 ms (measured), jetson-orin-nano 0.41 ms (predicted)``."""
    return ", ".join(f"{n} {e['ms']:.3g} ms ({e['kind']})" for n, e in latency.items())
