"""Resolving the run's budgets once, at start, from the config alone.

Per target: the teacher architecture's latency on its best runtime (timed on host, predicted
elsewhere: latency needs no trained weights), the k asked, the milliseconds, and what the
search space and the teacher pruned as far as it goes can reach there. Then:

* a budget the user wrote (a *wall*) that no candidate of the space reaches fails here, in
  seconds, with every target's numbers, before the teacher trains;
* a default (a *goal*) out of reach on a target becomes the fastest the space reaches there
  plus ``GOAL_MARGIN`` (timing noise, and a choice among more than one candidate), said in
  the budget's ``why``. A GPU at batch 1 on small inputs is bound by per-layer launch cost,
  so the default 4× is out of reach there for every network of the teacher's depth.
"""

from __future__ import annotations

from typing import Any

import torch

from edgekd.core.budgets import Reach, RunBudgets, TargetBudget
from edgekd.core.config import Config, ConstraintsConfig
from edgekd.core.errors import SearchError
from edgekd.core.profiles import Profile
from edgekd.engines.budgets.reach import latency_measure, pruned_teacher_reach, reach_of, space_reach
from edgekd.engines.latency.budgets import best_latency
from edgekd.engines.latency.oracle import LatencyEstimate
from edgekd.engines.models.build import build_model

GOAL_MARGIN = 1.1  # a goal out of reach becomes the fastest reachable + 10%
# search.constraints.speedup's default, also for targets a per-target mapping leaves out
DEFAULT_SPEEDUP: float = ConstraintsConfig.model_fields["speedup"].default


def speedup_for(speedup: float | dict[str, float] | None, profile: Profile) -> float | None:
    """The k of one target: a number for all, or the mapping's entry for its name or an alias,
    else its ``default`` entry, else the number's default (4)."""
    if not isinstance(speedup, dict):
        return speedup
    for key in (profile.name, *profile.aliases):
        if key in speedup:
            return speedup[key]
    return speedup.get("default", DEFAULT_SPEEDUP)


def written_by_user(c: ConstraintsConfig, profile: Profile) -> bool:
    """Whether the latency budget on ``profile`` is a number the user wrote (a wall)."""
    if c.latency_ms is not None:
        return True
    if "speedup" not in c.model_fields_set or c.speedup is None:  # the default k, or the profile's budget
        return False
    if isinstance(c.speedup, dict):
        return any(k in c.speedup for k in (profile.name, *profile.aliases, "default"))
    return True


def asked_budget(profile: Profile, teacher: LatencyEstimate | None, *, speedup: float | None,
                 latency_ms: float | None, what: str, wall: bool = False) -> TargetBudget:
    """The limit asked on one target: absolute ``latency_ms``, else teacher / ``speedup``, else the profile's."""
    t = teacher.__dict__.copy() if teacher is not None else None
    if latency_ms is not None:
        return TargetBudget(profile.name, latency_ms, f"{what}.latency_ms", None, t, wall)
    if speedup is not None and teacher is not None:
        return TargetBudget(profile.name, round(teacher.ms / speedup, 6),
                            f"teacher {teacher.ms:.3g} ms ({teacher.kind}, {teacher.runtime} {teacher.precision}) "
                            f"/ {speedup:g}", speedup, t, wall)
    return TargetBudget(profile.name, profile.latency_budget_ms, f"profile {profile.name} latency_budget_ms", None,
                        t, wall)


def relative_budgets(budgets: RunBudgets, targets: list[Profile], speedup: float | dict[str, float],
                     what: str) -> dict[str, TargetBudget]:
    """Another k over the same teacher latencies (``prune.speedup``): no second timing of the teacher."""
    return {p.name: asked_budget(p, budgets.teacher.get(p.name), speedup=speedup_for(speedup, p), latency_ms=None,
                                 what=what, wall=True) for p in targets}


def teacher_architecture(config: Config, num_classes: int) -> torch.nn.Module:
    """The teacher's architecture at random init, seeded: the same network every time it is built."""
    torch.manual_seed(config.seed)
    t = config.teacher
    return build_model(t.model, num_classes, t.kwargs, what="teacher.model")


def teacher_latency(config: Config, targets: list[Profile], input_size: int,
                    num_classes: int) -> dict[str, LatencyEstimate]:
    """The teacher architecture (random init: latency does not depend on the weights) on every target."""
    model = teacher_architecture(config, num_classes)
    return {p.name: best_latency(model, p, input_size, threads=config.bench.threads) for p in targets}


def resolve_budgets(config: Config, targets: list[Profile], *, input_size: int, num_classes: int,
                    round_to: int | None, space: Any = None) -> RunBudgets:
    """The run's budgets from the config alone; raises ``SearchError`` (exit 11) for a wall out of reach.
    ``space``: the search space the run searches (None: no search, nothing to probe)."""
    c = config.search.constraints
    teacher = teacher_latency(config, targets, input_size, num_classes)
    asked = {p.name: asked_budget(p, teacher.get(p.name), speedup=speedup_for(c.speedup, p), latency_ms=c.latency_ms,
                                  what="search.constraints", wall=written_by_user(c, p)) for p in targets}
    budgets = RunBudgets(asked, teacher)
    if config.prune.speedup is not None and "prune" in config.stages:
        budgets.prune = relative_budgets(budgets, targets, config.prune.speedup, "prune")
    if space is None or not budgets.limits():
        return budgets
    runtimes = {n: b.runtimes for n, b in asked.items()}
    measure = latency_measure(input_size, config.bench.threads, runtimes)

    def build(name: str, kwargs: dict[str, Any]) -> torch.nn.Module:
        torch.manual_seed(config.seed + 1)
        return build_model(name, num_classes, kwargs, what="search candidate")

    probes: dict[str, dict[str, Any]] = {}
    fastest = space_reach(space, build, targets, measure, probes)
    budgets.probes = probes
    pruned, shallow, cannot = {}, {}, None
    if config.distill.teacher_pruned is not False and "distill" in config.stages:
        arch = teacher_architecture(config, num_classes)
        pruned, cannot = pruned_teacher_reach(arch, input_size, round_to, targets, measure)
        if pruned and any(asked[n].ms is not None and ms > asked[n].ms for n, ms in pruned.items()):
            shallow, _ = pruned_teacher_reach(arch, input_size, round_to, targets, measure, shallow=True)
    for p in targets:
        asked[p.name].reach = reach_of(fastest, pruned, shallow, p.name, teacher[p.name].kind)
    walls = [b for b in asked.values() if b.wall and _out_of_reach(b)]
    if walls:
        raise wall_error(walls, asked, space.name, cannot)
    return settle_at_start(budgets)


def _out_of_reach(b: TargetBudget) -> bool:
    r = b.reach
    return b.ms is not None and r is not None and r.fastest_ms is not None and r.fastest_ms > b.ms


def settle_at_start(budgets: RunBudgets) -> RunBudgets:
    """Goals out of reach on a target lowered to what the space reaches there; notes for every target."""
    lowered, notes = {}, []
    for name, b in budgets.items():
        r = b.reach
        if b.ms is None or r is None or r.fastest_ms is None:
            continue
        k = b.speedup_at(r.fastest_ms)
        if r.fastest_ms <= b.ms:
            notes.append(f"{name}: ≤{b.ms:.3g} ms ({_asked(b)}) is reachable: the fastest candidate reads "
                         f"{r.fastest_ms:.3g} ms ({r.kind}), {b.ms / r.fastest_ms:.2f}× margin")
            continue
        goal = r.fastest_ms * GOAL_MARGIN
        why = (f"the default {_asked(b)} is out of reach on {name}: the fastest candidate of the space reads "
               f"{r.fastest_ms:.3g} ms ({r.kind}{f', {k:.2f}× the teacher' if k else ''})"
               + (f", the teacher pruned as far as it goes {r.pruned_teacher_ms:.3g} ms"
                  if r.pruned_teacher_ms is not None else "")
               + (f" ({r.pruned_shallow_ms:.3g} ms without its droppable residual blocks)"
                  if r.pruned_shallow_ms is not None else "")
               + f"; the goal is the fastest reachable + {GOAL_MARGIN - 1:.0%}")
        lowered[name] = b.lowered_to(goal, why)
        notes.append(f"{name}: {why}: ≤{goal:.3g} ms")
    return budgets.with_targets(lowered, notes)


def _asked(b: TargetBudget) -> str:
    return f"{b.speedup:g}× the teacher" if b.speedup is not None else f"{b.asked:.3g} ms"


def describe_reach(b: TargetBudget) -> str:
    r = b.reach or Reach()
    parts = [f"budget {b.asked:.3g} ms ({b.basis})"]
    if r.fastest_ms is not None:
        k = b.speedup_at(r.fastest_ms)
        parts.append(f"fastest candidate {r.fastest_ms:.3g} ms ({r.kind}"
                     + (f"; at most {k:.2f}× the teacher" if k else "") + ")")
    if r.pruned_teacher_ms is not None:
        parts.append(f"the teacher pruned as far as torch-pruning goes {r.pruned_teacher_ms:.3g} ms")
    if r.pruned_shallow_ms is not None:
        parts.append(f"{r.pruned_shallow_ms:.3g} ms with its droppable residual blocks removed too")
    return ", ".join(parts)


def wall_error(walls: list[TargetBudget], every: dict[str, TargetBudget], space: str,
               cannot_prune: str | None) -> SearchError:
    """Which written budgets no candidate reaches, with every target's numbers."""
    out = "; ".join(f"{b.target}: {describe_reach(b)}" for b in walls)
    ok = [b for b in every.values() if b not in walls and b.ms is not None and b.reach and b.reach.fastest_ms]
    fine = "; ".join(f"{b.target} reachable (≤{b.ms:.3g} ms, fastest {b.reach.fastest_ms:.3g} ms)"  # type: ignore[union-attr]
                     for b in ok)
    names = ", ".join(b.target for b in walls)
    w = walls[0]
    reach = w.reach.fastest_ms if w.reach else None
    if w.speedup is not None and reach:
        k = (w.teacher or {}).get("ms", 0) / reach
        fix = (f"lower search.constraints.speedup to at most {k:.2f} on {w.target} (per target: "
               f"{{{w.target}: {k:.2g}, default: 4}})")
    else:
        fix = f"raise search.constraints.latency_ms to at least {reach:.3g} ms" if reach else "raise the budget"
    return SearchError(
        f"the latency budget you set cannot be reached on {names} by any candidate of the {space} space "
        f"(checked before training): {out}" + (f"; {fine}" if fine else "")
        + (f"; {cannot_prune}" if cannot_prune else ""),
        hint=f"{fix}, add smaller choices to search.space, or remove the setting to take the best each target "
             "reaches",
    )
