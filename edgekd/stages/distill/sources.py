"""A second student source beside DisWOT search: the trained teacher, pruned to the budget.

Minitron (Muralidharan et al., NeurIPS 2024) and Nemotron Elastic (NVIDIA, 2025) prune the *trained* teacher
structurally and then distil from the unpruned one: the pruned network starts from trained
weights instead of a random init, and often beats a searched student of the same speed. So
when a run searches its student, the teacher pruned to the same latency budget is trained
beside it. A source is judged per target: pruned to the budgets of the targets it can reach
(a launch-bound GPU may be out of its reach), it continues the run when it serves every
target and is the more accurate, and otherwise ships as its own file where it wins.

Pruning is torch-pruning (magnitude importance, the target's channel rounding), driven until
the latency on each target it can reach is within the run's budget (measured on host, predicted
elsewhere: the same numbers the search used). Under torchrun rank 0 decides the cut and the
other ranks replay it, so every rank holds the same network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgekd.core import dist
from edgekd.core.errors import PruningError
from edgekd.engines.budgets import RunBudgets
from edgekd.engines.latency.budgets import best_latency
from edgekd.engines.models.artifact import ModelSpec, load_model
from edgekd.engines.models.pruned import replay_pruning
from edgekd.engines.models.stats import count_macs
from edgekd.engines.pruning.blocks import drop_blocks
from edgekd.engines.pruning.structured import magnitude_pruner
from edgekd.stages.context import RunContext


@dataclass
class PrunedTeacher:
    model: nn.Module
    spec: ModelSpec
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> estimate after pruning
    macs: int | None = None
    serves: list[str] = field(default_factory=list)  # the targets whose budget it was pruned to meet


Runtimes = dict[str, tuple[str, ...]]  # target -> the host runtimes its budget was timed in


def _ratio(model: nn.Module, ctx: RunContext, limits: dict[str, float],
           runtimes: Runtimes | None = None) -> tuple[float, dict[str, Any]]:
    """The worst target's latency / its budget (≤ 1: within every budget), and each estimate.
    ``runtimes``: time on host in the runtime the teacher's budget was timed in (as the search
    does: the budget is the teacher's there, and one runtime halves the cost of each micro-step)."""
    size, threads = ctx.data.image_size, ctx.config.bench.threads
    est = {p.name: best_latency(model, p, size, threads=threads, **({"runtimes": runtimes[p.name]}
                                if runtimes and p.name in runtimes else {}))
           for p in ctx.targets if p.name in limits}
    return max(e.ms / limits[n] for n, e in est.items()), {n: e.__dict__ for n, e in est.items()}


def reachable_limits(budgets: RunBudgets) -> tuple[dict[str, float], list[str], bool]:
    """The targets whose budget the teacher, pruned as far as it goes, can meet (probed before
    training: budgets/reach.py), with their limits; in words, the targets it cannot serve; and
    whether its droppable residual blocks go first (pruning/blocks.py): when removing depth is
    what brings a target within reach (a launch-bound GPU), the pruned teacher loses its blocks
    and serves that target too. A source is judged per target: one that meets host and the Pi
    but not a launch-bound GPU still competes on host and the Pi."""
    channels, deep, missed = {}, {}, []
    for n, b in budgets.items():
        if b.ms is None:
            continue
        r = b.reach
        floor = r.pruned_teacher_ms if r is not None else None
        shallow = r.pruned_shallow_ms if r is not None else None
        if floor is None or floor <= b.ms:
            channels[n] = b.ms
        elif shallow is not None and shallow <= b.ms:
            deep[n] = b.ms
        else:
            best = min(x for x in (floor, shallow) if x is not None)
            missed.append(f"{n} (as far as it goes {best:.3g} ms > {b.ms:.3g} ms, {best / b.ms:.2f}× over)")
    return {**channels, **deep}, missed, bool(deep)


def prune_teacher(ctx: RunContext, budgets: RunBudgets,
                  macs_cap: int | None) -> tuple[PrunedTeacher | None, str]:
    """The trained teacher pruned until it meets the latency budget of every target it can reach
    (or, without a latency budget, ``macs_cap``); ``(None, why)`` when it cannot be."""
    every = budgets.limits()
    limits, missed, shallow = reachable_limits(budgets)
    if every and not limits:
        return None, "the teacher pruned as far as torch-pruning allows reaches no target's budget: " + "; ".join(missed)
    if not limits and macs_cap is None:
        return None, "no latency budget and no MACs to match: nothing to prune the teacher to"
    model, spec = load_model(ctx.model_dirs()["teacher"])
    example = spec.example_input(1)
    runtimes = {n: b.runtimes for n, b in budgets.items()}
    decision: tuple[Any, ...] | None = None  # (ok, history, why, targets it serves, targets it cannot)
    if dist.world().main:
        decision = _decide(ctx, model, example, limits, macs_cap, shallow, runtimes)
        if not decision[0] and decision[3]:  # pruned as far as it goes it met some targets: serve those
            model, _ = load_model(ctx.model_dirs()["teacher"])
            met = {n: limits[n] for n in decision[3]}
            missed += [f"{n} (pruned as far as it goes it read over its {limits[n]:.3g} ms budget here)"
                       for n in limits if n not in met]
            decision = _decide(ctx, model, example, met, macs_cap, shallow, runtimes)
            decision = (*decision[:3], sorted(met), missed)
        else:
            decision = (*decision[:3], sorted(limits), missed)
    decision = dist.broadcast(decision)
    ok, history, why, serves, missed = decision
    if not ok:
        return None, why
    if not dist.world().main:
        replay_pruning(model, history, example)
    pruned_spec = ModelSpec(spec.model, spec.num_classes, dict(spec.kwargs), spec.input,
                            pruning_history=[*(spec.pruning_history or []), *history], role="student")
    latency = _ratio(model, ctx, every)[1] if every and dist.world().main else {}
    if missed:
        why += "; it cannot serve " + "; ".join(missed)
    return PrunedTeacher(model, pruned_spec, latency, count_macs(model, ctx.data.image_size), serves), why


def _decide(ctx: RunContext, model: nn.Module, example, limits: dict[str, float], macs_cap: int | None,
            shallow: bool, runtimes: Runtimes) -> tuple[bool, list[Any], str, list[str]]:
    """Rank 0: blocks removed first when ``shallow``, then the channel cut; (ok, history, why, and
    when it failed, the targets the model pruned as far as it goes meets after all)."""
    dropped = drop_blocks(model) if shallow else []
    ok, cut, why = _cut(ctx, model, example, limits, macs_cap, runtimes, depth_done=bool(dropped))
    if dropped:
        why += f" ({len(dropped)} residual blocks removed first: channels alone do not reach a launch-bound target)"
    met = [] if ok or len(limits) < 2 else [n for n, e in _ratio(model, ctx, limits, runtimes)[1].items()
                                            if e["ms"] <= limits[n]]
    return ok, [*dropped, *cut] if ok else [], why, met


def _cut(ctx: RunContext, model: nn.Module, example, limits: dict[str, float],
         macs_cap: int | None, runtimes: Runtimes, depth_done: bool = False) -> tuple[bool, list[Any], str]:
    """Rank 0: prune in torch-pruning's micro-steps until within budget; (ok, history, what was done).
    ``depth_done``: blocks were removed already, so a model within budget without a channel cut is a result."""
    size = ctx.data.image_size
    try:
        pruner = magnitude_pruner(model, example, ctx.plan.channel_rounding)
        model.eval()
        if limits and _ratio(model, ctx, limits, runtimes)[0] <= 1.0:  # an absolute budget the teacher meets already
            if depth_done:
                return True, [], "pruned to the latency budget on " + ", ".join(limits)
            if macs_cap is None:
                return False, [], "the teacher already meets the latency budget"
            limits = {}  # like for like instead: the searched student's MACs
        if limits:
            reached = pruner.step_until(lambda: _ratio(model, ctx, limits, runtimes)[0] <= 1.0)
            goal = "the latency budget on " + ", ".join(limits)
        else:
            reached = pruner.step_until(lambda: (count_macs(model, size) or 0) <= macs_cap)
            goal = f"{macs_cap / 1e6:.3g} M MACs (the searched student's)"
    except PruningError as exc:
        return False, [], f"torch-pruning cannot prune the teacher: {exc.message}"
    if not reached:
        return False, [], f"the teacher pruned as far as torch-pruning allows does not reach {goal}"
    if not pruner.history():
        return depth_done, [], (f"pruned to {goal}" if depth_done else f"the teacher needs no pruning to reach {goal}")
    return True, pruner.history(), f"pruned to {goal}"
