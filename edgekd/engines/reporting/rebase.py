"""A relative budget judged against the teacher timed beside the files it judges.

A ``speedup: k`` budget is fixed in ms when the run starts: the teacher's latency then,
divided by k. The bench stage times the files an hour or two later, and a shared machine can
be a third slower by then: judged against the old ms, a file k× faster than the teacher timed
beside it would miss a budget the user set as "k× faster than my teacher".

So, for the report, the run's budget object is moved onto the teacher's best latency *in
this run's latency rows for that target* (``TargetBudget.on_teacher``: the same k) (measured rows where the target has
any, as every decision of the report compares, else predictions; imported device-kit rows
count, so a device's measured teacher sets its budget). The budget the search used stays in
the report beside it, and a drift beyond the machine's noise is said in the basis.
"""

from __future__ import annotations

from typing import Any

from edgekd.core.budgets import TargetBudget
from edgekd.core.formats import HOST_RUNTIMES

# Side-by-side medians repeat within ~5-10% (reporting/choice.py); the same model can read 20%
# apart between stages of one run on a quiet machine. A larger drift is the machine's load, worth a word.
DRIFT_WORTH_SAYING = 0.2


def bench_teacher(latency: list[dict[str, Any]], target: str, cpu_only: bool = False) -> dict[str, Any] | None:
    """The teacher's fastest row on ``target`` among the rows a decision there compares; ``cpu_only``:
    of its CPU rows (a host budget is the teacher in the host CPU runtimes; a CUDA host's FP16 torch
    row is another device, not the same budget moved)."""
    rows = [r for r in latency if r["target"] == target]
    measured = [r for r in rows if r["kind"] == "measured"]
    teacher = [r for r in (measured or rows) if r["model"] == "teacher"]
    if cpu_only:
        teacher = [r for r in teacher if r.get("device", "cpu") == "cpu"] or teacher
    return min(teacher, key=lambda r: r["median_ms"]) if teacher else None


def rebased(budget: dict[str, Any], latency: list[dict[str, Any]], target: str) -> dict[str, Any]:
    """The report's budget fields for one target; a relative budget follows the teacher's row in
    ``latency`` (unchanged when it is absolute or the run has no teacher row there)."""
    b = TargetBudget.from_dict({"target": target, "ms": None, "basis": "", **budget})
    k = b.kept_speedup()
    then = budget.get("teacher") or {}
    summary = dict(budget.get("summary") or {})
    out = {"latency_budget_ms": budget["ms"], "budget_basis": budget["basis"], "speedup_budget": k,
           "teacher_latency": budget.get("teacher"), "budget": summary or None}
    lowered = b.lowered  # a goal lowered to what the target reaches: k is the speed-up it reaches
    cpu_runtime = str(then.get("runtime", "")).split(" ")[0] in HOST_RUNTIMES  # the budget timed a CPU runtime
    t = bench_teacher(latency, target, cpu_only=cpu_runtime) if k else None
    if t is None:
        return out
    basis = f"teacher {t['median_ms']:.3g} ms in this run's bench ({t['kind']}, {t['runtime']} {t['precision']}) / {k:g}"
    if lowered:
        basis += f" (the default {budget['speedup']:g}× is out of reach here: {k:g}× is what this target reaches)"
    if t.get("unstable") and t.get("round_medians_ms"):
        rm = t["round_medians_ms"]
        basis += f" (its rounds disagreed: {min(rm):.3g}-{max(rm):.3g} ms)"
    if then.get("ms"):
        drift = t["median_ms"] / then["ms"] - 1
        basis += f"; the search used {budget['ms']:.3g} ms (teacher {then['ms']:.3g} ms, {then.get('kind')})"
        if then.get("kind") != t["kind"]:
            basis += f": {t['kind']} rows replace the search's {then.get('kind')} figure"
        elif abs(drift) > DRIFT_WORTH_SAYING:
            why = ("the machine's load moved between the two" if t["kind"] == "measured" else
                   "another runtime or precision, or a calibration imported since")
            basis += f": the teacher read {abs(drift):.0%} {'slower' if drift > 0 else 'faster'} in bench; {why}"
    ms = b.on_teacher(t["median_ms"], basis).ms
    if summary:
        summary["limit_ms"] = ms
    return {**out, "latency_budget_ms": ms, "budget_basis": basis, "budget_ms_at_search": budget["ms"],
            "teacher_bench": {k2: t[k2] for k2 in ("median_ms", "kind", "runtime", "precision")}}
