"""Choosing how to deploy: per target and model, the fastest valid runtime and precision."""

from __future__ import annotations

from typing import Any

# Side-by-side medians on a shared machine repeat within ~5-10%: a winner by less than this
# is a close call (the same model can be won by one runtime in one run and by the other in
# the next; benchmarks/RESULTS.md, "Choosing the runtime"), and the report says so instead of
# implying a clear winner.
CLOSE_CALL = 0.05


def choose(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{target: {model: {chosen, alternatives}}}``; measured beats predicted on the same target.

    Only records of artifacts that passed validation reach here (the bench stage drops the
    rest), so the fastest row is also a valid one.
    """
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        out.setdefault(r["target"], {}).setdefault(r["model"], []).append(r)
    result: dict[str, dict[str, Any]] = {}
    for target, models in out.items():
        result[target] = {}
        for model, rows in models.items():
            measured = [r for r in rows if r["kind"] == "measured"]
            pool = measured or rows
            ranked = sorted(pool, key=lambda r: r["median_ms"])
            best = ranked[0]
            lead = round(ranked[1]["median_ms"] / best["median_ms"] - 1, 4) if len(ranked) > 1 else None
            result[target][model] = {
                "runtime": best["runtime"], "precision": best["precision"], "format": best["format"],
                "median_ms": best["median_ms"], "kind": best["kind"],
                "lead": lead, "close_call": lead is not None and lead < CLOSE_CALL,
                "alternatives": [{k: r[k] for k in ("runtime", "precision", "format", "median_ms", "kind")}
                                 for r in ranked[1:]],
            }
    return result
