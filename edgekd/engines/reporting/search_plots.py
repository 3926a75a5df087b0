"""The search's trade-off, one small panel per target: each candidate's DisWOT score against
its latency, the Pareto front, the latency budget, the chosen candidate and the teacher.

It answers what the single pick hides: how much score a faster budget costs, and whether
the chosen one sits on the front or only happens to be the best under this budget.
"""

from __future__ import annotations

from typing import Any

from edgekd.engines.reporting.plots import log_axis, png, pyplot
from edgekd.engines.reporting.schema import Report

FRONT, OTHER, CHOSEN, TEACHER, BUDGET = "#d62728", "#1f77b4", "#f0a000", "#7f7f7f", "#c00"


def _budget(r: Report, target: str) -> float | None:
    ms = ((r.search.get("budgets") or {}).get("latency_ms") or {}).get(target)
    return ms if ms is not None else next((t.get("latency_budget_ms") for t in r.targets if t["name"] == target), None)


def _marks(ax: Any, r: Report, target: str, pts: list[dict[str, Any]]) -> list[Any]:
    """The chosen candidate (ringed), the teacher (a star) and the budget (dashed); their legend handles."""
    from matplotlib.lines import Line2D

    out = []
    chosen = next((p for p in pts if p["key"] == (r.search.get("chosen") or {}).get("key")), None)
    if chosen:
        ax.scatter(chosen["ms"], chosen["score"], s=230, facecolors="none", edgecolors=CHOSEN, linewidths=2.2, zorder=4)
        out.append(Line2D([], [], ls="", marker="o", ms=12, mfc="none", mec=CHOSEN, mew=2.2, label="chosen"))
    tp = r.search.get("teacher_point") or {}
    t = (tp.get("latency") or {}).get(target)
    if t and tp.get("combined") is not None:
        ax.scatter(t["ms"], tp["combined"], s=140, marker="*", color=TEACHER, zorder=4)
        out.append(Line2D([], [], ls="", marker="*", ms=11, color=TEACHER, label="teacher (vs itself)"))
    budget = _budget(r, target)
    if budget:
        ax.axvline(budget, color=BUDGET, lw=1.2, ls="--", zorder=1)
        out.append(Line2D([], [], color=BUDGET, lw=1.2, ls="--", label=f"budget {budget:.3g} ms"))
    return out


def search_panel(r: Report, target: str) -> str | None:
    """One target's panel as base64 PNG, or None when no candidate was timed there."""
    pts = [p for p in (r.search.get("points") or {}).get(target, []) if p.get("score") is not None]
    if not pts:
        return None
    plt = pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    rest = [p for p in pts if not p["pareto"]]
    ax.scatter([p["ms"] for p in rest], [p["score"] for p in rest], s=18, color=OTHER, alpha=0.55, zorder=2)
    front = sorted((p for p in pts if p["pareto"]), key=lambda p: p["ms"])
    ax.step([p["ms"] for p in front], [p["score"] for p in front], where="post", color=FRONT, lw=1, zorder=2)
    ax.scatter([p["ms"] for p in front], [p["score"] for p in front], s=30, color=FRONT, zorder=3)
    handles = [Line2D([], [], ls="", marker="o", ms=5, color=OTHER, alpha=0.55, label="candidate"),
               Line2D([], [], marker="o", ms=6, color=FRONT, lw=1, label=f"Pareto front ({len(front)})")]
    handles += _marks(ax, r, target, pts)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              borderaxespad=0)
    log_axis(ax)
    kinds = " / ".join(sorted({p["kind"] for p in pts}))
    ax.set_xlabel(f"latency, ms per image (log scale; {kinds})")
    ax.set_ylabel("DisWOT score (higher: more like the teacher)")
    ax.set_title(target, fontsize=11, loc="left")
    ax.grid(alpha=0.3, which="both")
    return png(fig)


def search_panels(r: Report) -> list[tuple[str, str]]:
    """(target, PNG) for every target the search timed candidates on."""
    out = []
    for target in (r.search.get("points") or {}):
        img = search_panel(r, target)
        if img:
            out.append((target, img))
    return out
