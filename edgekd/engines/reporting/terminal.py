"""The table printed at the end of a run, like `yolo benchmark`'s: one row per artifact and
where it was timed, with its status (reporting/verdicts.py: ✅ valid, ❎ optional export
failed, ⏳ to build on the device, ❌ failed), whether it meets the target's latency budget,
and ⚠ on predictions that contradict each other (explained under the table). Every cell is
escaped: model names and notes are the user's or a library's text, not rich markup."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from edgekd.core.formats import format_of_runtime
from edgekd.engines.reporting.points import figure
from edgekd.engines.reporting.schema import Report
from edgekd.engines.reporting.verdicts import (
    ICON,
    NOT_STUDENTS,
    budget_of,
    contradictions,
    export_status,
    model_order,
    row_status,
)

COLUMNS = ("Model", "Target", "Runtime", "Precision", "Status", "Size (MB)", "Accuracy", "Latency (ms)", "Budget",
           "Kind")
RIGHT = ("Size (MB)", "Accuracy", "Latency (ms)")


def model_names(r: Report) -> str:
    """``teacher: resnet18 · student: mobilenetv3 w0.5 d0.75 · ...``: what each row's model is."""
    return " · ".join(f"{m.label}: {m.name or m.model}" for m in r.models
                      if m.label not in NOT_STUDENTS or m.label == "teacher")


def runtime_cell(runtime: str, fmt: str) -> str:
    """The runtime, with the file format when it is not the runtime's own (OpenVINO reading an ONNX file)."""
    try:
        own = format_of_runtime(runtime).name
    except KeyError:
        own = None
    return runtime if own == fmt else f"{runtime} ({fmt})"


def _accuracy(r: Report, x: dict[str, Any]) -> float | None:
    if x.get("validation"):
        return x["validation"]["accuracy"]
    m = r.model(x["model"])
    if m is None:
        return None
    key = f"{x['format']} {x['precision']}"
    return next((v for k, v in m.runtime_accuracy.items() if k.startswith(key)), m.accuracy)


def budget_cell(ms: float | None, budget: float | None) -> str:
    if ms is None or budget is None:
        return "–"
    return f"✓ ≤{budget:.3g}" if ms <= budget else f"✗ >{budget:.3g}"


def _latency_rows(r: Report, marks: dict[int, list[int]]) -> list[list[str]]:
    order = model_order(r)
    idx = sorted(range(len(r.latency)), key=lambda i: (r.latency[i]["target"] != "host", r.latency[i]["target"],
                                                        order.index(r.latency[i]["model"]), r.latency[i]["median_ms"]))
    rows = []
    for i in idx:
        x = r.latency[i]
        m = r.model(x["model"])
        size = m.size_mb.get(f"{x['format']} {x['precision']}") if m else None
        acc = _accuracy(r, x)
        flag = " " + " ".join(f"⚠{n}" for n in marks[i]) if i in marks else ""
        rows.append([x["model"], x["target"], runtime_cell(x["runtime"], x["format"]), x["precision"],
                     ICON[row_status(r, x)], f"{size:.2f}" if size else "–", f"{acc:.2f}%" if acc is not None else "–",
                     f"{figure(x['median_ms'], x['kind'])}{flag}", budget_cell(x["median_ms"], budget_of(r, x["target"])), x["kind"]])
    return rows


def _export_rows(r: Report) -> list[list[str]]:
    """Exports that have no latency row: optional ones that failed, engines still to build."""
    timed = {(x["model"], x["format"], x["precision"]) for x in r.latency}
    rows = []
    for e in r.exports:
        status = export_status(e)
        if status == "ok" or (status == "deferred" and (e["model"], e["format"], e["precision"]) in timed):
            continue
        why = {"deferred": "build on the device", "optional_failed": "validation failed (optional)"}.get(
            status, f"export {e.get('status')}")
        rows.append([e["model"], e.get("target") or "–", e["format"], e["precision"], ICON[status], "–",
                     f"{e['parity']['accuracy']:.2f}%" if e.get("parity") else "–", "–", "–", why])
    return rows


def summary_table(r: Report) -> Table:
    flags = contradictions(r)
    marks: dict[int, list[int]] = {}
    for n, f in enumerate(flags, 1):
        for i in f.rows:
            marks.setdefault(i, []).append(n)
    t = Table(title=escape(f"edgekd · {r.run_name}\n{model_names(r)}"), title_justify="left")
    for col in COLUMNS:
        t.add_column(col, justify="right" if col in RIGHT else "left", no_wrap=col in ("Target", "Latency (ms)"))
    rows = _latency_rows(r, marks) + _export_rows(r)
    if not r.latency:
        rows += [[m.label, "–", "torch", "int8 (simulated)" if m.label == "quantized" else "fp32", ICON["ok"], "–",
                  f"{m.accuracy:.2f}%" if m.accuracy is not None else "–", "–", "–", "–"] for m in r.models]
    for row in rows:
        t.add_row(*(escape(c) for c in row))
    notes = ["⚠ predictions that contradict each other: the roofline model is unsure there; measure those "
             "models on the device (edgekd_kit.py bench-dir, then edgekd report --import)"] if flags else []
    notes += [f"⚠{n} {f.message}" for n, f in enumerate(flags, 1)]
    notes += [f"{'passed' if g.passed else 'FAILED'}: {g.name} gate on {g.target or 'the run'}: {g.detail}"
              for g in r.gates]
    if notes:
        t.caption = escape("\n".join(notes))
        t.caption_justify = "left"
    return t


def search_table(r: Report) -> Table:
    """The ranked candidates of a search: score components, size, latency, feasibility; below it,
    per target, the score/latency front and where the pick and the teacher sit."""
    from edgekd.engines.reporting.tables import front_lines, search_section

    sec = search_section(r)
    t = Table(title=f"DisWOT search · {escape(str(r.search.get('space')))} · top {len(sec.rows)}", title_justify="left")
    for h in sec.headers:
        t.add_column(h, overflow="fold")
    for row in sec.rows:
        t.add_row(*(escape(c) for c in row))
    lines = front_lines(r.search)
    if lines:
        t.caption, t.caption_justify = escape("\n".join(lines)), "left"
    return t


def deploy_lines(r: Report) -> list[str]:
    """One line per target, the same as ``deployment``: what to ship there and what it gives.
    ``host → export/pruned.onnx (onnxruntime fp32, 0.116 ms measured, 96.15%, 6.4× the teacher; 4× asked)``."""
    from edgekd.engines.reporting.points import runtime_name

    out = []
    asked = {t["name"]: t.get("budget") or {} for t in r.targets}
    for target, d in r.deployment.items():
        k = d.get("speedup_vs_teacher_best")
        b = asked.get(target, {})
        goal = ""
        if b.get("asked_speedup"):
            reach = b.get("reachable_speedup")
            goal = f"; asked {b['asked_speedup']:g}×" + (
                f", out of reach here: the best this target reaches is {reach:.2g}×" if b.get("lowered") and reach
                else "")
        floor = d.get("accuracy_floor") or {}
        flag = " ✗ under the accuracy floor" if floor and not floor.get("met") else ""
        acc = f"{d['accuracy']:.2f}%" if d.get("accuracy") is not None else "accuracy unknown"
        kind = d["kind"]
        speed = f", {figure(k, kind, 2)}× the teacher's best ({kind})" if k else ""
        out.append(f"{target} → {d.get('description') or d['file']} ({runtime_name(d['runtime'])} {d['precision']}, "
                   f"{figure(d['median_ms'], kind, 4)} ms {kind}, {acc}{speed}{goal}){flag}")
    return out


def result_events(r: Report) -> list[tuple[str, dict[str, Any]]]:
    """The run's result as ``--log-format json`` events: one ``deploy`` per target, then ``report``."""
    out = [("deploy", {"target": t, **d.model_dump()}) for t, d in r.deployment.items()]
    return [*out, ("report", {"run_dir": r.run_dir, "gates": [g.model_dump() for g in r.gates]})]
