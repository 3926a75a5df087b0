"""The report's answers, as tables for Markdown and HTML alike: what to ship on each target,
where the time went, what pruning cost and recovered, and what distillation changed
beyond top-1 (calibration and per-class accuracy)."""

from __future__ import annotations

from typing import Any

from edgekd.engines.models.names import display_name
from edgekd.engines.reporting.points import runtime_name
from edgekd.engines.reporting.schema import Report
from edgekd.engines.reporting.tables import Section, num


def _images(samples: int | None, of: int | None) -> str:
    if samples is None:
        return ""
    return f"all {samples} validation images" if of is None or samples >= of else f"{samples} of {of} validation images"


def recommendation_section(r: Report) -> Section:
    """Per target: the file to ship, how it runs, how fast and how accurate there, and why."""
    s = Section("What to deploy, per target", ["Target", "Model", "Ship", "Runtime / precision", "Latency (ms)",
                                               "Accuracy (in its runtime)", "Speed-up vs teacher's best", "Why"])
    for target, c in r.deployment.items():
        tb = c.get("teacher_best")
        speed = (f"{c['speedup_vs_teacher_best']:.2f}× (teacher: {runtime_name(tb['runtime'])} {tb['precision']}, "
                 f"{tb['median_ms']:.3f} ms)" if tb else "–")
        text = c.get("description") or c.get("file") or "–"
        ship = text if "`" in text or " " in text else f"`{text}`"
        s.rows.append([target, c["model"], ship, f"{runtime_name(c['runtime'])} {c['precision']}",
                       f"{c['median_ms']:.3f} *{c['kind']}*", num(c["accuracy"], 2, "%"), speed, c["reason"]])
        s.lines.append(f"{target}: accuracy from {c['accuracy_source']}, on "
                       f"{_images(c.get('accuracy_samples'), r.data.get('val'))}."
                       + (f" Build it there with `{c['build_command']}`." if c.get("build_command") else "")
                       + (f" Budget {c['budget_ms']:.3g} ms: {c['budget_basis']}." if c.get("budget_ms") is not None
                          and c.get("budget_basis") else ""))
    return s


def pruning_section(r: Report) -> Section:
    """Each kept pruning step: MACs and parameters left, accuracy right after the cut and after
    fine-tuning, latency per target; and the step that did not pay, when pruning stopped."""
    s = Section("Pruning steps", ["Step", "MACs (M)", "MACs vs start", "Params (M)", "Accuracy after the cut",
                                  "Accuracy after fine-tuning", "Latency per target"])
    base, steps = r.pruning.get("base"), r.pruning.get("steps") or []
    if not base:
        return s
    s.rows.append(["start", num(base["macs"] / 1e6, 3), "1.00×", num(base["params"] / 1e6, 3), "–",
                   num(base["accuracy"], 2, "%"), _latencies(base.get("latency"))])
    for st in steps:
        s.rows.append([str(st["step"]), num(st["macs"] / 1e6, 3), f"{base['macs'] / st['macs']:.2f}× fewer",
                       num(st["params"] / 1e6, 3),
                       num(st["accuracy_after_pruning"], 2, "%") if st.get("cut", True) else "nothing cut",
                       num(st["accuracy"], 2, "%"), _latencies(st.get("latency"))])
    if r.pruning.get("channel_rounding"):
        s.lines.append(f"Channel counts kept at multiples of {r.pruning['channel_rounding']} (the plan's channel "
                       "rounding: the targets' kernel channel blocks).")
    idle = [str(st["step"]) for st in steps if not st.get("cut", True)]
    if idle:
        one = len(idle) == 1
        s.lines.append(f"Step{'' if one else 's'} {', '.join(idle)} cut nothing: an earlier cut, in whole channel "
                       f"blocks, already reached {'its target; it' if one else 'their targets; they'} fine-tuned "
                       "further.")
    stop = r.pruning.get("stopped")
    if stop:
        kept = (f"step {stop['steps_kept']} is the pruned model" if stop.get("steps_kept")
                else "the pruned model is the unpruned input: prune did not pay")
        s.lines.append(f"Pruning stopped at step {stop['step']}: {stop['reason']}; {kept}.")
    return s


def _latencies(latency: dict | None) -> str:
    if not latency:
        return "–"
    return "; ".join(f"{name} {e['ms']:.3g} *{e['kind']}*" for name, e in latency.items())


def distillation_section(r: Report) -> Section:
    """KD against the same student without the teacher, when measured; a note when not."""
    s = Section("Distillation: with and without the teacher")
    d = r.comparisons.get("distillation")
    if d:
        s.headers = ["Model", "Accuracy (PyTorch)", "ECE (15 bins)"]
        ece = (r.distillation_effects or {}).get("ece", {})
        names = d.get("names") or {"with_teacher": "student (with the teacher)",
                                    "without_teacher": "baseline (same student, labels only)"}
        for name, acc, role in (("teacher", d.get("teacher"), "teacher"),
                                (f"{names['with_teacher']}, with the teacher", d["with_teacher"], "student"),
                                (f"{names['without_teacher']}, labels only", d["without_teacher"], "baseline")):
            s.rows.append([name, num(acc, 2, "%"), num(_pct(ece.get(role)), 2, "%")])
        s.lines.append(f"Distillation gained {d['gain_points']:+.2f} points over the same student trained on labels "
                       f"alone (same {d['epochs']} epoch{'s' if d['epochs'] != 1 else ''}, seed, optimizer and augmentation).")
        if d.get("shipped") == "plain":
            s.lines.append("Plain training won, so the student trained without the teacher is the one shipped "
                           "(`student`; KD is never shipped below it); the distilled one, `student (KD)`, is kept "
                           "in `distill/kd/`.")
    else:
        s.lines.append("Not measured: the student was not also trained without the teacher. Set "
                       "`distill.compare_baseline: true` to train that baseline and report what distillation gained.")
    return s


def _pct(x: float | None) -> float | None:
    return None if x is None else 100 * x


def effect_names(r: Report) -> dict[str, str]:
    """The effects' roles (``student``: distilled, ``baseline``: labels only) under the names the rest
    of the report gives those models (``student``, ``student (KD)``, ``student (no teacher)``)."""
    names = (r.comparisons.get("distillation") or {}).get("names")
    if not names:
        return {}
    return {"student": names["with_teacher"], "baseline": names["without_teacher"]}


def effects_section(r: Report) -> Section:
    """ECE of each model and the student's largest per-class gains and losses."""
    e = r.distillation_effects or {}
    s = Section("Beyond top-1: calibration and per-class accuracy",
                ["Comparison", "Largest gains (points, class)", "Largest losses (points, class)", "Classes unchanged"])
    if not e:
        return s
    shown = effect_names(r)
    ece = ", ".join(f"{shown.get(name, name)} {100 * v:.2f}%" for name, v in e["ece"].items())
    s.lines.append(f"Expected calibration error ({e['ece_bins']} equal-width confidence bins, "
                   f"{_images(e['samples'], r.data.get('val'))}; lower is better calibrated): {ece}.")
    for key, c in e.get("changes", {}).items():
        fmt = "; ".join
        a, _, b = key.partition("_vs_")
        s.rows.append([f"{shown.get(a, a)} vs {shown.get(b, b)}",
                       fmt(f"{g['points']:+.1f} ({g['class']}, {g['images']} img)" for g in c["gains"]) or "none",
                       fmt(f"{g['points']:+.1f} ({g['class']}, {g['images']} img)" for g in c["losses"]) or "none",
                       str(c["unchanged"])])
    if "baseline" not in e["ece"]:
        s.lines.append("No baseline trained without the teacher in this run: the student is compared with the "
                       "teacher only.")
    return s


def sources_section(r: Report) -> Section:
    """The searched student against the trained teacher pruned to the same budget (distill)."""
    c = r.comparisons.get("student_sources") or {}
    s = Section("Student sources: searched (each family) vs the teacher pruned",
                ["Source", "Architecture", "Accuracy with the teacher (PyTorch)", "Without the teacher", "MACs (M)",
                 "Latency (ms)", "Went on"])
    for name, x in (c.get("sources") or {}).items():
        label = "DisWOT search" if name == "search" else "the trained teacher, pruned" if name == "teacher_pruned" \
            else f"DisWOT search, best {name.removeprefix('search_')} student" if name.startswith("search_") else name
        s.rows.append([label, display_name(x["model"], x.get("kwargs") or {}),
                       num(x["accuracy"], 2, "%") + _stopped(x.get("stopped")),
                       num(x["plain_accuracy"], 2, "%") + _stopped(x.get("plain_stopped")) if "plain_accuracy" in x
                       else "not trained",
                       num((x.get("macs") or 0) / 1e6, 3), _latencies(x.get("latency")),
                       "yes" if name == c.get("chosen") else "no"])
    s.lines += list(c.get("notes") or [])
    race = c.get("race") or {}
    if race:
        s.lines.append(f"Raced: at epochs {', '.join(map(str, race['rungs']))} of each run, a run more than "
                       f"{race['margin']:g} points behind the best run so far stopped; every curve is kept.")
        s.lines += [f"{name}: {x['why']}" for name, x in (race.get("stopped") or {}).items()]
    return s


def _stopped(stop: dict[str, Any] | None) -> str:
    """`` (stopped at epoch 2/10)`` for a run a race stopped."""
    return f" (stopped at epoch {stop['epoch']}/{stop['of']})" if stop else ""
