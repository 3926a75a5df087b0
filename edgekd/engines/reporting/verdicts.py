"""What each row of the report means for a deployer: its status, its budget, and whether a
prediction contradicts itself.

A latency table that shows every number plainly invites the wrong reading: a teacher the
roofline model predicts faster than its own student, or an INT8 file predicted slower than
the float one it came from, is a prediction the model is unsure of, not a finding. Such
rows are flagged (measured rows never are: a measured INT8 MobileNetV3 slower than FP32 in
ONNX Runtime is real). Statuses: ✅ valid (validated here; measured or predicted), ❎ an
optional export that failed validation, ⏳ an engine to build on the device, ❌ failed
(a device measurement whose accuracy fell off, or an export in an unknown state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekd.engines.reporting.schema import Report

ICON = {"ok": "✅", "optional_failed": "❎", "deferred": "⏳", "failed": "❌"}
FLOATS = ("fp32", "fp16")
DEVICE_ACCURACY_GAP = 1.0  # points a device-kit row may lose against PyTorch on its 256 images (1 image = 0.39)
# the teacher, and distill's second student (reporting/sections.py student_names): no file ships of them
NOT_STUDENTS = ("teacher", "baseline", "student (KD)", "student (no teacher)")


@dataclass(frozen=True)
class Flag:
    """A prediction that contradicts another one on the same target."""

    target: str
    rows: tuple[int, ...]  # indices into report.latency
    message: str


def row_status(r: Report, row: dict[str, Any]) -> str:
    """``ok`` | ``deferred`` (predicted for a file not built here: a TensorRT engine) | ``failed`` (a device
    measurement whose accuracy on the kit's validation images fell off)."""
    v = row.get("validation")
    if v and v.get("torch_accuracy") is not None and v["accuracy"] < v["torch_accuracy"] - DEVICE_ACCURACY_GAP:
        return "failed"
    if row["kind"] == "predicted" and not any(_same_artifact(e, row) and e.get("status") == "ok" for e in r.exports):
        return "deferred"  # predicted for a file that is built on the device (or not built yet)
    return "ok"


def export_status(e: dict[str, Any]) -> str:
    return {"ok": "ok", "deferred": "deferred", "failed": "optional_failed"}.get(e.get("status", ""), "failed")


def _same_artifact(e: dict[str, Any], row: dict[str, Any]) -> bool:
    return (e["model"], e["format"], e["precision"]) == (row["model"], row["format"], row["precision"]) and \
        e.get("target") in (None, row["target"])


def budget_of(r: Report, target: str) -> float | None:
    """The target's latency budget (ms): from the report, else from its profile (imported targets)."""
    for t in r.targets:
        if t["name"] == target and t.get("latency_budget_ms"):
            return float(t["latency_budget_ms"])
    from edgekd.core.errors import ProfileError
    from edgekd.core.profiles import resolve_target

    try:
        return float(resolve_target(target)[0].latency_budget_ms)
    except ProfileError:
        return None


def model_order(r: Report) -> list[str]:
    """Model labels in pipeline order (teacher, student, pruned, quantized, then any other)."""
    labels = [m.label for m in r.models]
    return labels + sorted({x["model"] for x in r.latency} - set(labels))


def float_parent(r: Report, label: str) -> str | None:
    """The float model an INT8 model was made from: the last student-like model before it."""
    order = [m.label for m in r.models]
    if label not in order:
        return None
    before = [x for x in order[: order.index(label)] if x not in NOT_STUDENTS]
    return before[-1] if before else None


def contradictions(r: Report) -> list[Flag]:
    """Predicted rows that contradict each other: teacher faster than a student; INT8 slower than float."""
    by_key: dict[tuple[str, str, str, str], int] = {}
    for i, x in enumerate(r.latency):
        if x["kind"] == "predicted":
            key = (x["target"], x["runtime"], x["model"], x["precision"])
            if key not in by_key or x["median_ms"] < r.latency[by_key[key]]["median_ms"]:
                by_key[key] = i
    flags = [*_teacher_faster(r, by_key), *_int8_slower(r, by_key)]
    return sorted(flags, key=lambda f: (f.target, f.rows))


def _teacher_faster(r: Report, by_key: dict[tuple[str, str, str, str], int]) -> list[Flag]:
    out = []
    for (target, runtime, model, prec), i in by_key.items():
        if model in NOT_STUDENTS:
            continue
        j = by_key.get((target, runtime, "teacher", prec))
        if j is not None and r.latency[j]["median_ms"] < r.latency[i]["median_ms"]:
            out.append(Flag(target, (j, i), f"{target}: the teacher is predicted faster than {model} "
                            f"({runtime} {prec}: {r.latency[j]['median_ms']:.3f} vs {r.latency[i]['median_ms']:.3f} ms)"))
    return out


def _int8_slower(r: Report, by_key: dict[tuple[str, str, str, str], int]) -> list[Flag]:
    out = []
    for (target, runtime, model, prec), i in by_key.items():
        if prec != "int8":
            continue
        for other in dict.fromkeys([model, float_parent(r, model)]):
            for fp in FLOATS:
                j = by_key.get((target, runtime, other, fp)) if other else None
                if j is not None and r.latency[i]["median_ms"] > r.latency[j]["median_ms"]:
                    same = "" if other == model else f" of {other}, its float model"
                    out.append(Flag(target, (j, i), f"{target}: {model} INT8 is predicted slower than {fp.upper()}"
                                    f"{same} ({runtime}: {r.latency[i]['median_ms']:.3f} vs "
                                    f"{r.latency[j]['median_ms']:.3f} ms)"))
    return out
