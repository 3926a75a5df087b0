"""The report's content as titled tables, rendered alike to Markdown, HTML and the terminal."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekd.engines.reporting.points import figure
from edgekd.engines.reporting.schema import Report


@dataclass
class Section:
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def num(v: float | None, nd: int = 2, suffix: str = "") -> str:
    """A number for a table cell, "–" when missing."""
    return "–" if v is None else f"{v:.{nd}f}{suffix}"


def models_section(r: Report) -> Section:
    s = Section("Models", ["Model", "Architecture", "Accuracy (PyTorch)", "Accuracy (exported, own runtime)",
                           "Params (M)", "MACs (M)", "Size (MB)"])
    for m in r.models:
        rt = "; ".join(f"{k}: {v:.2f}%{_subset(r, m.label, k)}" for k, v in m.runtime_accuracy.items()) or "–"
        size = "; ".join(f"{k}: {v:.2f}" for k, v in m.size_mb.items()) or "–"
        s.rows.append([m.label, m.model, num(m.accuracy, 2, "%"), rt,
                       num(m.params / 1e6 if m.params else None, 3), num(m.macs / 1e6 if m.macs else None, 2), size])
    s.lines += models_lines(r)
    return s


def _subset(r: Report, label: str, key: str) -> str:
    """" on N of M images (PyTorch on these: x%)" when an export was checked on a subset of the
    validation images: its accuracy is then comparable with PyTorch's on that subset only."""
    for e in r.exports:
        p = e.get("parity") or {}
        of = p.get("of") or r.data.get("val")  # runs before schema 1.2 did not record it
        if e["model"] == label and key.startswith(f"{e['format']} {e['precision']} ") and p and of \
                and p["samples"] < of:
            return f" on {p['samples']} of {of} images (PyTorch on these: {p['torch_accuracy']:.2f}%)"
    return ""


def models_lines(r: Report) -> list[str]:
    """Which images the exported files' accuracies are measured on."""
    sizes = {(p["samples"], p.get("of") or r.data.get("val")) for e in r.exports
             if (p := e.get("parity")) and "samples" in p}  # older reports' parity may lack it
    if not sizes:
        return []
    if all(of is None or n >= of for n, of in sizes):
        n = max(n for n, _ in sizes)
        return [f"Each exported file's accuracy is measured in its own runtime on the same {n} validation images "
                f"as the PyTorch accuracy beside it (all of them)."]
    return ["Some exported files were checked on a subset of the validation images (`export.validate_samples`): "
            "their accuracy is labelled with the subset's size and PyTorch's accuracy on that same subset."]


def latency_section(r: Report) -> Section:
    s = Section("Latency", ["Model", "Target", "Kind", "Runtime", "Format", "Precision", "Batch", "Threads",
                            "Median (ms)", "p90 (ms)", "p99 (ms)", "Throughput (img/s)"])
    for x in sorted(r.latency, key=lambda x: (x["target"], x["model"], x["median_ms"])):
        s.rows.append([x["model"], x["target"], x["kind"], f"{x['runtime']} {x.get('runtime_version', '')}".strip(),
                       x["format"], x["precision"], str(x["batch_size"]), str(x.get("threads") or "–"),
                       figure(x["median_ms"], x["kind"], 4), figure(x.get("p90_ms"), x["kind"], 4),
                       figure(x.get("p99_ms"), x["kind"], 4), figure(x.get("throughput_ips"), x["kind"], 1)])
    s.lines.append("Every latency is labelled: *measured* on the named machine, or *predicted* by the roofline model.")
    return s


def speedup_section(r: Report) -> Section:
    s = Section("Speed-ups (measured on host)")
    tb = r.speedups.get("teacher_best")
    for label, row in r.speedups.items():
        if label in ("teacher_best", "teacher") or not isinstance(row, dict):
            continue
        parts = [f"**{label}**: {row['best_median_ms']:.4f} ms ({row['best_runtime']} {row['best_precision']})"]
        if tb and "speedup_vs_teacher_best" in row:
            parts.append(f"{row['speedup_vs_teacher_best']:.2f}× faster than the teacher on its best runtime "
                         f"({tb['runtime']} {tb['precision']}, {tb['median_ms']:.4f} ms)")
        if "speedup_vs_teacher_eager" in row:
            parts.append(f"{row['speedup_vs_teacher_eager']:.2f}× vs the teacher in PyTorch eager")
        s.lines.append("; ".join(parts))
    return s


def deployment_section(r: Report) -> Section:
    """Per target: the fastest valid way to run each model, and what else was considered."""
    s = Section("Fastest way to run each model, per target", ["Target", "Model", "Runtime", "Precision", "Latency (ms)", "Kind",
                                                 "Alternatives"])
    for target, models in r.choices.items():
        for model, c in models.items():
            alts = "; ".join(f"{a['runtime']} {a['precision']} {a['median_ms']:.3f}" for a in c["alternatives"]) or "–"
            s.rows.append([target, model, c["runtime"], c["precision"], f"{c['median_ms']:.4f}", c["kind"], alts])
            if c.get("close_call"):
                s.lines.append(f"{target} / {model}: {c['runtime']} {c['precision']} leads the next option by only "
                               f"{c['lead']:.1%}, within measurement noise; either is as fast.")
    return s


def device_build_section(r: Report) -> Section:
    """Engines to build on the target (device-specific), with the exact commands."""
    s = Section("Build on the device", ["Target", "Model", "Precision", "Device kit (in the export folder)", "trtexec"])
    deferred = [e for e in r.exports if e.get("status") == "deferred"]
    for e in deferred:
        s.rows.append([e.get("target") or "–", e["model"], e["precision"], e["command"], e.get("trtexec") or "–"])
    if deferred:
        s.lines.append(f"Copy `{r.run_dir}/export/` to the device (it holds the models, `validation.npz` and "
                       f"`edgekd_kit.py`), run the commands there, then `python3 edgekd_kit.py bench-dir . --target "
                       f"<target> --out results.json` and merge it here with `edgekd report {r.run_dir} --import "
                       f"results.json`. {deferred[0]['note']}.")
    return s


def comparison_section(r: Report) -> Section:
    """Each compression stage's own comparison (distillation has its section: reporting/outcome.py)."""
    s = Section("Method comparisons")
    for name in ("search", "prune", "quantize"):
        c = r.comparisons.get(name)
        if c and isinstance(c, dict) and c.get("summary"):
            s.lines.append(f"{name.capitalize()}: {c['summary']}")
    return s


def search_section(r: Report) -> Section:
    s = Section("Architecture search (DisWOT, no training)",
                ["Rank", "Candidate", "DisWOT score", "Semantic", "Relation", "Params (M)", "MACs (M)",
                 "Latency", "Feasible"])
    for i, c in enumerate(r.search.get("top", []), 1):
        lat = "; ".join(f"{t}: {v['ms']:.3f} ms {v['kind']}" for t, v in c.get("latency", {}).items()) or "–"
        s.rows.append([str(i), c["key"], num(c.get("combined"), 3), f"{c['semantic']:.4g}", f"{c['relation']:.4g}",
                       num(c["params"] / 1e6, 3), num(c["macs"] / 1e6 if c.get("macs") else None, 2), lat,
                       "yes" if c["feasible"] else "no: " + "; ".join(c["violations"])])
    ch = r.search.get("chosen", {})
    if ch:
        s.lines.append(f"Chosen: {ch['key']} → {ch['model']} {ch['kwargs']}; {r.search['evaluated']} of "
                       f"{r.search['space_size']} candidates scored ({r.search['strategy']}) in "
                       f"{r.search['seconds']:.1f} s; budgets {r.search['budgets']}.")
    s.lines += front_lines(r.search)
    return s


def front_lines(search: dict) -> list[str]:
    """Per target, one line: the size of the score/latency front, the pick and the teacher on it."""
    return [front_line(search, target) for target in search.get("front") or {}]


def front_line(search: dict, target: str) -> str:
    keys = (search.get("front") or {}).get(target, [])
    chosen, tp = search.get("chosen") or {}, search.get("teacher_point") or {}
    lat = (chosen.get("latency") or {}).get(target)
    on = "on the front" if chosen.get("key") in keys else "not on the front"
    pick = (f"chosen {chosen['key']} (score {num(chosen.get('score'), 3)}, {lat['ms']:.3g} ms, {on})"
            if chosen and lat else "nothing chosen")
    t = (tp.get("latency") or {}).get(target)
    t_at = (f"teacher at {t['ms']:.3g} ms ({t['kind']}; score {num(tp.get('combined'), 3)} against itself, "
            f"the best possible)" if t else "teacher not timed")
    return f"{target}: front: {len(keys)} candidates; {pick}; {t_at}."


def stages_section(r: Report) -> Section:
    s = Section("Stages", ["Stage", "Seconds", "Resumed", "Device"])
    for name, st in r.stages.items():
        s.rows.append([name, num(st.get("seconds"), 1), "yes" if st.get("resumed") else "no", st.get("device") or "–"])
    return s


def environment_section(r: Report) -> Section:
    s = Section("Environment", ["Item", "Value"])
    for k, v in r.environment.items():
        s.rows.append([k, str(v)])
    return s


def input_section(r: Report) -> Section:
    """The input contract every model and exported file uses, and where each part came from."""
    s = Section("Input (preprocessing)", ["Setting", "Value", "From"])
    prep, src = r.data.get("preprocess") or {}, r.data.get("preprocess_sources") or {}
    for k in ("size", "resize", "crop_fraction", "interpolation", "mean", "std", "channels"):
        if k in prep:
            v = prep[k]
            shown = ", ".join(f"{x:.4g}" for x in v) if k in ("mean", "std") else (
                f"{v[0]}×{v[1]}" if k == "size" else str(v))
            s.rows.append([k, shown, src.get(k, "–")])
    if r.data.get("preprocess_summary"):
        s.lines.append(f"Every model, exported file and the device kit use: {r.data['preprocess_summary']}.")
    s.lines += list(r.data.get("notes") or [])
    if r.data.get("streamed"):
        s.lines.append("Images were streamed from the folder by DataLoader workers (not held in memory).")
    return s
