"""When no single candidate meets every target's goal: take the closest, and say which target binds.

Targets pull apart: a GPU at batch 1 is bound by per-layer launch cost (fewer layers pay), a
CPU by MACs (narrower layers pay). Each target's goal may be reachable alone and not together.
The candidate whose worst goal is least exceeded (latency / goal, over the goal targets) is the
best one network can do for all of them; each goal it misses is loosened to it, plus the
same margin as a goal out of reach alone. Walls (budgets the user wrote) never move: a
candidate that misses one is not considered.
"""

from __future__ import annotations

from typing import Any

from edgekd.core.budgets import RunBudgets, TargetBudget
from edgekd.engines.budgets.resolve import GOAL_MARGIN


def worst_goal_ratio(latency: dict[str, dict[str, Any]], goals: dict[str, TargetBudget]) -> float:
    return max((latency[n]["ms"] / b.ms for n, b in goals.items() if n in latency and b.ms), default=1.0)


def settle_jointly(budgets: RunBudgets, candidates: list[tuple[str, dict[str, dict[str, Any]], bool]]
                   ) -> RunBudgets | None:
    """``candidates``: (key, latency per target, meets every wall and size limit). The budgets with
    the missed goals loosened to the closest candidate; None when no candidate meets the walls."""
    goals = {n: b for n, b in budgets.items() if not b.wall and b.ms is not None}
    eligible = [(k, lat) for k, lat, ok in candidates if ok and lat]
    if not goals or not eligible:
        return None
    key, lat = min(eligible, key=lambda c: worst_goal_ratio(c[1], goals))
    missed = {n: b for n, b in goals.items() if n in lat and lat[n]["ms"] > b.ms}  # type: ignore[operator]
    if not missed:
        return None
    binding = max(missed, key=lambda n: lat[n]["ms"] / missed[n].ms)  # type: ignore[operator]
    met = sorted(set(goals) - set(missed))
    loosened, notes = {}, []
    for n, b in missed.items():
        ms = lat[n]["ms"] * GOAL_MARGIN
        why = (f"no single candidate meets every target's goal at once ({', '.join(sorted(goals))}); the closest, "
               f"{key}, reads {lat[n]['ms']:.3g} ms here ({lat[n]['kind']})"
               + (f" and meets the goal on {', '.join(met)}" if met else "")
               + f"; {binding} bounds the choice")
        prior = f"{b.why}; " if b.why else ""
        loosened[n] = b.lowered_to(ms, prior + why)
        notes.append(f"{n}: {why}: goal ≤{ms:.3g} ms")
    return budgets.with_targets(loosened, notes)
