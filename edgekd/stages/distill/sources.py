"""A second student source beside DisWOT search: the trained teacher, pruned to the budget.

Minitron / Nemotron Elastic (this project's seed papers) prune the *trained* teacher
structurally and then distil from the unpruned one: the pruned network starts from trained
weights instead of a random init. A user measured exactly that beating the searched student
(torch-pruning's teacher at 2.8 M MACs: 96.7% at 8.1× against 96.65% at 4.4×). So when a run
searches its student, the teacher pruned to the same latency budget on every target is
trained beside it, and the measured result decides which one the run continues with.

Pruning is torch-pruning (magnitude importance, the target's channel rounding), driven until
the latency on every target is within the run's budget (measured on host, predicted
elsewhere: the same numbers the search used). Under torchrun rank 0 decides the cut and the
other ranks replay it, so every rank holds the same network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgekd.core import dist
from edgekd.core.errors import PruningError
from edgekd.core.registries import IMPORTANCES
from edgekd.latency.budgets import TargetBudget, best_latency
from edgekd.models.artifact import ModelSpec, load_model
from edgekd.models.pruned import replay_pruning
from edgekd.models.stats import count_macs
from edgekd.pruning.structured import ChannelPruner
from edgekd.stages.base import RunContext


@dataclass
class PrunedTeacher:
    model: nn.Module
    spec: ModelSpec
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> estimate after pruning
    macs: int | None = None


def _ratio(model: nn.Module, ctx: RunContext, limits: dict[str, float]) -> tuple[float, dict[str, Any]]:
    """The worst target's latency / its budget (≤ 1: within every budget), and each estimate."""
    size, threads = ctx.data.image_size, ctx.config.bench.threads
    est = {p.name: best_latency(model, p, size, threads=threads) for p in ctx.targets if p.name in limits}
    return max(e.ms / limits[n] for n, e in est.items()), {n: e.__dict__ for n, e in est.items()}


def prune_teacher(ctx: RunContext, budgets: dict[str, TargetBudget],
                  macs_cap: int | None) -> tuple[PrunedTeacher | None, str]:
    """The trained teacher pruned until it meets every target's latency budget (or, without a
    latency budget, ``macs_cap``); ``(None, why)`` when it cannot be."""
    limits = {n: b.ms for n, b in budgets.items() if b.ms is not None}
    if not limits and macs_cap is None:
        return None, "no latency budget and no MACs to match: nothing to prune the teacher to"
    model, spec = load_model(ctx.model_dirs()["teacher"])
    example = spec.example_input(1)
    decision: tuple[bool, list[Any], str] | None = None
    if dist.world().main:
        decision = _cut(ctx, model, example, limits, macs_cap)
    decision = dist.broadcast(decision)
    ok, history, why = decision
    if not ok:
        return None, why
    if not dist.world().main:
        replay_pruning(model, history, example)
    pruned_spec = ModelSpec(spec.model, spec.num_classes, dict(spec.kwargs), spec.input,
                            pruning_history=[*(spec.pruning_history or []), *history], role="student")
    latency = _ratio(model, ctx, limits)[1] if limits and dist.world().main else {}
    return PrunedTeacher(model, pruned_spec, latency, count_macs(model, ctx.data.image_size)), why


def _cut(ctx: RunContext, model: nn.Module, example, limits: dict[str, float],
         macs_cap: int | None) -> tuple[bool, list[Any], str]:
    """Rank 0: prune in torch-pruning's micro-steps until within budget; (ok, history, what was done)."""
    size = ctx.data.image_size
    criterion = IMPORTANCES.get("magnitude")(IMPORTANCES.parse_params("magnitude", {}, key="magnitude"))
    try:
        pruner = ChannelPruner(model, example, importance=criterion.build(), global_pruning=False, ignored=[],
                               skip_unsupported=True, round_to=ctx.plan.channel_rounding)
        model.eval()
        if limits and _ratio(model, ctx, limits)[0] <= 1.0:  # an absolute budget the teacher meets already
            if macs_cap is None:
                return False, [], "the teacher already meets the latency budget"
            limits = {}  # like for like instead: the searched student's MACs
        if limits:
            reached = pruner.step_until(lambda: _ratio(model, ctx, limits)[0] <= 1.0)
            goal = "the latency budget on " + ", ".join(limits)
        else:
            reached = pruner.step_until(lambda: (count_macs(model, size) or 0) <= macs_cap)
            goal = f"{macs_cap / 1e6:.3g} M MACs (the searched student's)"
    except PruningError as exc:
        return False, [], f"torch-pruning cannot prune the teacher: {exc.message}"
    if not reached:
        return False, [], f"the teacher pruned as far as torch-pruning allows does not reach {goal}"
    if not pruner.history():
        return False, [], f"the teacher needs no pruning to reach {goal}"
    return True, pruner.history(), f"pruned to {goal}"
