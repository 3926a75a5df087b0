"""The report's figures (matplotlib, Agg), returned as base64 PNG for report.html.

One accuracy-vs-latency panel per target: points coloured by model, shaped by runtime and
precision, filled when measured and hollow when predicted, with the Pareto front, the
target's latency budget and the recommended file ringed; a legend instead of point labels
(labels pile into smears once a target has ten rows).
"""

from __future__ import annotations

import base64
import io
from typing import Any

from edgekd.engines.reporting.points import Point, comparable, pareto_front, report_targets, target_points
from edgekd.engines.reporting.schema import Report

MODEL_COLOURS = {"teacher": "#7f7f7f", "student": "#1f77b4", "pruned": "#2ca02c", "quantized": "#d62728",
                 "baseline": "#9467bd", "student (no teacher)": "#9467bd", "student (KD)": "#17becf"}
EXTRA_COLOURS = ["#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e"]
MARKERS = ["o", "s", "D", "^", "v", "P", "X", "<", ">", "h"]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend: reports render where there is no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any, dpi: int = 130) -> str:
    """The figure as base64 PNG (closed afterwards: a report renders many)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _colour(model: str, order: list[str]) -> str:
    if model in MODEL_COLOURS:
        return MODEL_COLOURS[model]
    extra = [m for m in order if m not in MODEL_COLOURS]
    return EXTRA_COLOURS[extra.index(model) % len(EXTRA_COLOURS)]


def _legend(ax: Any, models: list[str], series: list[str], kinds: set[str], extras: list[Any]) -> None:
    from matplotlib.lines import Line2D

    # three keys, three kinds of handle: a colour swatch per model, a marker shape per runtime and
    # precision, and fill (a shape no runtime uses) for measured against predicted
    h = [Line2D([], [], ls="-", lw=5, color=_colour(m, models), label=m) for m in models]
    h += [Line2D([], [], ls="", marker=MARKERS[i % len(MARKERS)], ms=7, color="#333", label=s)
          for i, s in enumerate(series)]
    if len(kinds) > 1 or "predicted" in kinds:
        h += [Line2D([], [], ls="", marker="*", ms=10, color="#333", label="measured (filled)"),
              Line2D([], [], ls="", marker="*", ms=10, mfc="none", color="#333", label="predicted (hollow)")]
    ax.legend(handles=h + extras, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              borderaxespad=0)


def log_axis(ax: Any) -> None:
    """Log-scale x with plain tick labels at 1-2-5 steps (the default mixes 3×10⁻¹ into 4×10⁻¹)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def accuracy_latency_panel(r: Report, target: str, budget: float | None) -> str | None:
    """One target's accuracy (in each file's runtime) against its latency."""
    points = [p for p in target_points(r, target) if p.accuracy is not None]
    if not points:
        return None
    plt = pyplot()
    from matplotlib.lines import Line2D

    models = list(dict.fromkeys(p.model for p in points))
    series = list(dict.fromkeys(p.series for p in points))
    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    for p in points:
        c = _colour(p.model, models)
        ax.scatter(p.ms, p.accuracy, s=46, marker=MARKERS[series.index(p.series) % len(MARKERS)], zorder=3,
                   facecolors=c if p.kind == "measured" else "none", edgecolors=c, linewidths=1.4)
    extras = []
    front = pareto_front(comparable(points))
    if len(front) > 1:
        ax.step([p.ms for p in front], [p.accuracy for p in front], where="post", color="#444", lw=1, ls=":",
                zorder=2)
        extras.append(Line2D([], [], color="#444", lw=1, ls=":", label="Pareto front"))
    pick = r.deployment.get(target)
    if pick:
        ax.scatter(pick["median_ms"], pick["accuracy"], s=260, facecolors="none", edgecolors="#f0a000",
                   linewidths=2.2, zorder=4)
        extras.append(Line2D([], [], ls="", marker="o", ms=13, mfc="none", mec="#f0a000", mew=2.2,
                             label="recommended"))
    if budget:
        ax.axvline(budget, color="#c00", lw=1.2, ls="--", zorder=1)
        extras.append(Line2D([], [], color="#c00", lw=1.2, ls="--", label=f"budget {budget:.3g} ms"))
    _legend(ax, models, series, {p.kind for p in points}, extras)
    log_axis(ax)
    kinds = " / ".join(sorted({p.kind for p in points}))
    ax.set_xlabel(f"latency, median ms per image (log scale; {kinds})")
    ax.set_ylabel("accuracy in its runtime (%)")
    ax.set_title(target, fontsize=11, loc="left")
    ax.grid(alpha=0.3, which="both")
    return png(fig)


def accuracy_latency_panels(r: Report) -> list[tuple[str, str, list[Point]]]:
    """(target, PNG, points) per target with latency rows, in the report's target order."""
    budgets = {t["name"]: t.get("latency_budget_ms") for t in r.targets}
    out = []
    for target in report_targets(r):
        img = accuracy_latency_panel(r, target, budgets.get(target))
        if img:
            out.append((target, img, target_points(r, target)))
    return out


def stage_times_plot(r: Report) -> str | None:
    """Seconds per stage as bars, with the total (resumed stages hatched: time of the original run)."""
    stages = [(name, st.get("seconds"), st.get("resumed")) for name, st in r.stages.items()
              if st.get("seconds") is not None]
    if not stages:
        return None
    plt = pyplot()
    total = sum(s for _, s, _ in stages)
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(stages) + 0.9))
    names = [n for n, _, _ in stages][::-1]
    secs = [s for _, s, _ in stages][::-1]
    bars = ax.barh(names, secs, color="#4c78a8")
    for bar, (_, _, resumed) in zip(bars, stages[::-1], strict=True):
        if resumed:
            bar.set_hatch("//")
            bar.set_facecolor("#a9c0da")
    for y, s in enumerate(secs):
        ax.text(s, y, f" {s:.1f} s ({s / total:.0%})", va="center", fontsize=8)
    ax.set_xlim(0, max(secs) * 1.3)
    ax.set_xlabel("seconds")
    ax.set_title(f"total {total:.0f} s ({total / 60:.1f} min)", fontsize=10, loc="left")
    ax.grid(alpha=0.3, axis="x")
    return png(fig)


def pruning_plot(r: Report) -> str | None:
    """Accuracy against MACs: the model before pruning, each cut (hollow) and its fine-tune (filled)."""
    base, steps = r.pruning.get("base"), r.pruning.get("steps") or []
    if not base or not steps:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.scatter(base["macs"] / 1e6, base["accuracy"], s=50, color="#1f77b4", label="before pruning", zorder=3)
    prev = (base["macs"] / 1e6, base["accuracy"])
    for s in steps:
        x = s["macs"] / 1e6
        ax.annotate("", (x, s["accuracy_after_pruning"]), prev, arrowprops={"arrowstyle": "->", "color": "#999"})
        ax.annotate("", (x, s["accuracy"]), (x, s["accuracy_after_pruning"]),
                    arrowprops={"arrowstyle": "->", "color": "#2ca02c"})
        ax.scatter(x, s["accuracy_after_pruning"], s=50, facecolors="none", edgecolors="#d62728", zorder=3,
                   label="after the cut" if s is steps[0] else None)
        ax.scatter(x, s["accuracy"], s=50, color="#2ca02c", zorder=3,
                   label="after fine-tuning" if s is steps[0] else None)
        prev = (x, s["accuracy"])
    ax.invert_xaxis()
    ax.set_xlabel("MACs (millions; fewer to the right)")
    ax.set_ylabel("accuracy, PyTorch (%)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return png(fig)


def class_change_plot(effects: dict[str, Any], other: str, names: dict[str, str] | None = None) -> str | None:
    """Per-class accuracy of the student minus ``other``'s, every class (for up to 40 classes)."""
    pc = effects.get("per_class") or {}
    if "student" not in pc or other not in pc or len(pc["classes"]) > 40:
        return None
    pairs = [(c, a - b) for c, a, b in zip(pc["classes"], pc["student"], pc[other], strict=True)
             if a is not None and b is not None]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    ax.bar([c for c, _ in pairs], [d for _, d in pairs], color=["#2ca02c" if d >= 0 else "#d62728" for _, d in pairs])
    ax.axhline(0, color="#333", lw=0.8)
    ax.set_ylabel("points")
    ax.set_xlabel("class")
    shown = names or {}
    ax.set_title(f"per-class accuracy: {shown.get('student', 'student')} − {shown.get(other, other)}", fontsize=10,
                 loc="left")
    ax.tick_params(axis="x", labelsize=8, rotation=90 if len(pairs) > 12 else 0)
    ax.grid(alpha=0.3, axis="y")
    return png(fig)


def training_plot(histories: dict[str, list[dict[str, Any]]]) -> str | None:
    """Validation accuracy per epoch of every training the run did."""
    if not histories:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for name, h in histories.items():
        ax.plot([e["epoch"] for e in h], [e["val_accuracy"] for e in h], marker=".", label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)
