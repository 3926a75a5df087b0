"""Which file to ship on each target, and why: the first thing a reader of the report wants.

The rule, stated in every choice's ``reason``: among the target's rows (measured ones when
it has any, else predicted) within the target's latency budget and at most
``report.max_accuracy_drop`` points under the teacher (default 2), take the most accurate,
then the fastest within ``report.accuracy_slack`` points of it (default 1: what a user gives
for a file much faster at nearly the same accuracy; 0 picks the most accurate file in the
budget whatever its speed). When no file in the budget is above that floor, the most
accurate one is shown, the row says so and what to change, and the floor's gate fails
(exit 13): a default never ships a file far below the teacher in silence. Every file of the
run competes on every target (the teacher pruned, when it serves only some targets, too); a
model with no file inside a target's budget is named there with how far it misses.
Accuracy is each file's own, in its runtime (reporting/points.py). The teacher competes
too: where no compressed model beats it, the report says so instead of recommending a
model that is slower and less accurate. With nothing inside the budget, the fastest is
shown and the reason says it misses the budget. A stage whose output is slower and not more
accurate than its input on a target "did not pay" there (``unpaid``): its files are not chosen
on that target and the reason names it.
"""

from __future__ import annotations

from typing import Any

from edgekd.core.config import ReportConfig
from edgekd.core.formats import format_named
from edgekd.engines.latency.measure import rounds_text
from edgekd.engines.reporting.points import Point, comparable, file_name, report_targets, target_points
from edgekd.engines.reporting.schema import Report

ACCURACY_SLACK: float = ReportConfig.model_fields["accuracy_slack"].default  # points
MAX_ACCURACY_DROP: float | None = ReportConfig.model_fields["max_accuracy_drop"].default  # points under the teacher
CHAIN = ("student", "pruned", "quantized")  # each compression stage's output, in order: each takes the one before


def _fastest(points: list[Point], model: str) -> Point | None:
    """A model's best showing on the target: its fastest file (with a known accuracy)."""
    own = [p for p in points if p.model == model and p.accuracy is not None]
    return min(own, key=lambda p: (p.ms, -p.accuracy)) if own else None


def unpaid(points: list[Point]) -> list[dict[str, Any]]:
    """Stages whose output is slower *and* not more accurate than their input here: never shipped."""
    return [u for u in slower_than_input(points) if u["excluded"]]


def slower_than_input(points: list[Point]) -> list[dict[str, Any]]:
    """Stages whose output is slower than their input on this target (an INT8 file slower than FP32).

    Each model is compared with the model its stage started from (the one before it in
    ``CHAIN`` that this run has), each at its fastest file. Such an output "did not pay" there;
    when it is not more accurate either (``excluded``) it is never the file to ship, and the
    input stays a candidate; when it is more accurate it stays a candidate too, and says so.
    """
    present = [m for m in CHAIN if _fastest(points, m) is not None]
    out = []
    for prev, model in zip(present, present[1:], strict=False):
        a, b = _fastest(points, prev), _fastest(points, model)
        assert a is not None and b is not None
        if b.ms > a.ms:
            excluded = b.accuracy <= a.accuracy  # type: ignore[operator]
            tail = ("and not more accurate" if excluded else
                    "though more accurate, so it stays a candidate: it bought accuracy, not speed")
            out.append({"model": model, "input": prev, "ms": b.ms, "input_ms": a.ms, "accuracy": b.accuracy,
                        "input_accuracy": a.accuracy, "kind": b.kind, "excluded": excluded,
                        "reason": f"{model} is {b.ms / a.ms:.2f}× slower than its input {prev} "
                                  f"({b.ms:.3g} vs {a.ms:.3g} ms, {b.kind}) {tail} "
                                  f"({b.accuracy:.2f}% vs {a.accuracy:.2f}%)"})
    return out


def _file(r: Report, p: Point) -> dict[str, Any]:
    """Where the file to ship is, as paths: ``file`` (relative to the run folder; for an engine built
    on the device, where the build writes it in export/), ``source_file`` (what it is built from),
    ``build_command``, and a ``description`` for people."""
    out: dict[str, Any] = {"file": None, "source_file": None, "build_command": None, "built_on_device": False}
    if p.format == "torch":
        m = r.model(p.model)
        stage = (m.stage.split(" ")[0] if m and m.stage else p.model)
        return {**out, "file": f"{stage}/model/", "description": f"`{stage}/model/` (edgekd model folder, PyTorch)"}
    for e in r.exports:
        if e["model"] == p.model and e["format"] == p.format and e["precision"] == p.precision:
            if e.get("status") == "ok" and e.get("path"):
                return {**out, "file": e["path"], "description": e["path"]}
            if e.get("status") == "deferred" and e.get("target") in (None, p.target):
                src = _source_file(r, p)
                made = f" from `{src}`" if src else ""
                command = e.get("command") or ""
                engine = (command.split("--out ", 1)[1].split()[0] if "--out " in command  # the exporter's name
                          else f"{p.model}_{p.precision}_{p.target}.engine")
                return {"file": f"export/{engine}", "source_file": src,
                        "build_command": e.get("command"), "built_on_device": True,
                        "description": f"{file_name(p.format)} ({p.precision}) built on the device{made}"}
    return {**out, "description": f"{p.model} ({p.format} {p.precision})"}


def _source_file(r: Report, p: Point) -> str | None:
    """The exported file a device-built format is made from (the ONNX file of a TensorRT engine)."""
    try:
        fmt = format_named(p.format).built_from
    except KeyError:
        return None
    prec = "int8" if p.precision == "int8" else "fp32"
    e = next((e for e in r.exports if e["model"] == p.model and e["format"] == fmt and e["precision"] == prec
              and e.get("path")), None)
    return e["path"] if e else None


def _teacher_accuracy(r: Report) -> float | None:
    m = r.model("teacher")
    return m.accuracy if m is not None else None


def _points(x: float) -> str:
    return f"{x:g} point{'' if x == 1 else 's'}"


def _pick(cands: list[Point], budget: float | None, slack: float, floor: float | None) -> tuple[Point, str, bool]:
    """(the file, why, whether it meets the accuracy floor): the fastest within ``slack`` of the most
    accurate of the files inside the budget that are at most the allowed drop under the teacher."""
    inside = [p for p in cands if budget is None or p.ms <= budget]
    if not inside:
        best = min(cands, key=lambda p: p.ms)
        return best, (f"nothing meets the {budget:.3g} ms budget: the fastest option is shown "
                      f"({best.ms:.3g} ms)"), floor is None or best.accuracy >= floor - 1e-9
    n = f"{len(inside)} option{'s' if len(inside) != 1 else ''}"
    verb = "meets" if len(inside) == 1 else "meet"
    where = f"{n} {verb} the {budget:.3g} ms budget" if budget is not None else f"{n} (no latency budget set)"
    fit = [p for p in inside if floor is None or p.accuracy >= floor - 1e-9]
    if not fit:
        best = max(inside, key=lambda p: (p.accuracy, -p.ms))
        return best, (f"{where}, but none is within the allowed drop of the teacher (floor {floor:.2f}%): the most "
                      f"accurate is shown ({best.model}, {best.accuracy:.2f}%); train longer (distill.epochs, "
                      "prune.finetune.epochs), allow a slower file (search.constraints.speedup), or set "
                      "report.max_accuracy_drop: null to accept it"), False
    top = max(fit, key=lambda p: (p.accuracy, -p.ms))
    close = [p for p in fit if p.accuracy >= top.accuracy - slack - 1e-9]
    best = min(close, key=lambda p: (p.ms, -p.accuracy))
    if best.accuracy == top.accuracy:
        why = f"{where}; this is the most accurate"
        rest = sorted((p.accuracy for p in fit if p.model != best.model), reverse=True)
        if len(close) > 1:
            why += f", and the fastest of the {len(close)} within {_points(slack)} of it"
        elif rest:
            why += f" (the next model is {top.accuracy - rest[0]:.2f} points behind)"
    else:
        why = (f"{where}; this is the fastest within {_points(slack)} of the most accurate "
               f"({top.model}, {top.accuracy:.2f}%)")
    if len(fit) < len(inside):
        why += f"; {len(inside) - len(fit)} more in the budget read under the floor {floor:.2f}%"
    return best, why, True


def _missed(cands: list[Point], budget: float | None) -> list[dict[str, Any]]:
    """Compressed models none of whose files fit the budget here: by how much each misses."""
    if budget is None:
        return []
    out = []
    for model in dict.fromkeys(p.model for p in cands if p.model != "teacher"):
        fastest = min((p for p in cands if p.model == model), key=lambda p: p.ms)
        if fastest.ms > budget:
            out.append({"model": model, "ms": fastest.ms, "budget_ms": budget, "over": round(fastest.ms / budget, 3),
                        "reason": f"{model} misses the {budget:.3g} ms budget here: its fastest file reads "
                                  f"{fastest.ms:.3g} ms ({fastest.kind}), {fastest.ms / budget:.2f}× the budget"})
    return out


def _unstable(r: Report, target: str, points: list[Point]) -> str:
    """The rows behind ``points`` whose bench rounds still disagreed (latency/measure.py), in words."""
    out = []
    for p in points:
        row = next((x for x in r.latency if x["target"] == target and x["model"] == p.model
                    and x["runtime"] == p.runtime and x["format"] == p.format and x["precision"] == p.precision), None)
        if row and row.get("unstable") and row.get("round_medians_ms"):
            out.append(f"{p.model} {p.runtime}: {rounds_text(row['round_medians_ms'])}")
    return "; ".join(dict.fromkeys(out))


def recommend(r: Report, slack: float = ACCURACY_SLACK,
              max_drop: float | None = MAX_ACCURACY_DROP) -> dict[str, dict[str, Any]]:
    """``{target: choice}`` for every target with latency rows and a compressed model; ``slack``:
    the accuracy points given up for the fastest file (report.accuracy_slack); ``max_drop``: how far
    under the teacher a shipped file may read (report.max_accuracy_drop; None: no floor)."""
    budgets = {t["name"]: t.get("latency_budget_ms") for t in r.targets}
    bases = {t["name"]: t.get("budget_basis") for t in r.targets}
    out: dict[str, dict[str, Any]] = {}
    for target in report_targets(r):
        pool = comparable(target_points(r, target))
        skipped = unpaid(pool)
        traded = [u for u in slower_than_input(pool) if not u["excluded"]]
        dropped = {u["model"] for u in skipped}
        cands = [p for p in pool if p.accuracy is not None and p.model not in dropped]
        if not cands:
            continue
        teacher = [p for p in pool if p.model == "teacher"]
        tbest = min(teacher, key=lambda p: p.ms) if teacher else None
        t_acc = tbest.accuracy if tbest is not None and tbest.accuracy is not None else _teacher_accuracy(r)
        floor = t_acc - max_drop if max_drop is not None and t_acc is not None else None
        best, why, floor_met = _pick(cands, budgets.get(target), slack, floor)
        missed = _missed(cands, budgets.get(target))
        if missed:
            why += "; " + "; ".join(m["reason"] for m in missed)
        if skipped:
            why += "; did not pay here: " + "; ".join(u["reason"] for u in skipped)
        if traded:
            why += "; slower than its input here: " + "; ".join(u["reason"] for u in traded)
        shaky = _unstable(r, target, [best, *([tbest] if tbest is not None else [])])
        if shaky:
            why += (f"; timings unstable on this machine ({shaky}): re-run `edgekd bench` on the run's config "
                    "when the machine is idle before trusting the margin")
        if best.model == "teacher" and len({p.model for p in cands}) > 1:
            why += f"; no compressed model is faster at this accuracy on this target ({best.kind})"
        out[target] = {
            "model": best.model, **_file(r, best), "runtime": best.runtime,
            "format": best.format, "precision": best.precision, "median_ms": best.ms, "kind": best.kind,
            "accuracy": best.accuracy, "accuracy_source": best.source, "accuracy_samples": best.samples,
            "budget_ms": budgets.get(target), "budget_basis": bases.get(target), "reason": why,
            "teacher_best": ({"runtime": tbest.runtime, "precision": tbest.precision, "median_ms": tbest.ms,
                              "kind": tbest.kind, "accuracy": tbest.accuracy} if tbest else None),
            "speedup_vs_teacher_best": round(tbest.ms / best.ms, 3) if tbest else None,
            "did_not_pay": skipped, "slower_than_input": traded, "timings_unstable": shaky or None, "missed_budget": missed,
            "accuracy_floor": ({"max_drop": max_drop, "teacher": t_acc, "floor": round(floor, 3), "met": floor_met}
                               if floor is not None else None),
        }
    return out
