"""Each latency row with the accuracy of *that* file in *its* runtime, and the Pareto front.

A quantized model plotted at its PyTorch (fake-quantized) accuracy hides what INT8 rounding
costs in ONNX Runtime or OpenVINO, and an ONNX file's accuracy is only known when it ran in
ONNX Runtime. So a point's accuracy comes, first match wins, from:

1. the device kit's own check on the device (imported rows carry ``validation``);
2. PyTorch, for torch rows (the model folder itself);
3. the export's parity check: the same file run in its own runtime (on this machine);
4. for a format built on the device (a TensorRT engine), the file it is built from, in that
   file's runtime: labelled so, since the engine's own accuracy is measured by the kit;
5. PyTorch, labelled "no runtime measurement".

Every source says how many validation images it used; a subset is labelled with its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekd.core.formats import format_display, format_named, runtime_display
from edgekd.engines.reporting.schema import Report


@dataclass
class Point:
    target: str
    model: str
    runtime: str
    format: str
    precision: str
    kind: str  # measured | predicted
    ms: float
    accuracy: float | None
    source: str  # where the accuracy comes from, in words
    samples: int | None = None  # validation images the accuracy is on
    of: int | None = None  # validation images in the run (samples < of: a subset)
    torch_accuracy: float | None = None  # PyTorch on the same images (a subset's reference)

    @property
    def series(self) -> str:
        """The runtime and precision, as the legend names them."""
        return f"{runtime_display(self.runtime)} {self.precision}"

    @property
    def subset(self) -> bool:
        return self.samples is not None and self.of is not None and self.samples < self.of


PREDICTED_FIGURES = 2  # a roofline prediction is good to tens of percent: two significant figures say so


def figure(value: float | None, kind: str, decimals: int = 3) -> str:
    """A latency (or anything derived from one) as precise as its source: ``decimals`` places when
    measured, two significant figures when predicted ("0.21", not "0.2112")."""
    if value is None:
        return "–"
    if kind == "predicted":
        return f"{float(f'{value:.{PREDICTED_FIGURES}g}'):g}"
    return f"{value:.{decimals}f}"


def runtime_name(runtime: str) -> str:
    return runtime_display(runtime)


def file_name(fmt: str) -> str:
    return format_display(fmt)


def _export(r: Report, model: str, fmt: str, precision: str) -> dict[str, Any] | None:
    return next((e for e in r.exports if e["model"] == model and e["format"] == fmt and e["precision"] == precision
                 and e.get("status") == "ok" and e.get("parity")), None)


def _from_parity(e: dict[str, Any], source: str) -> dict[str, Any]:
    p = e["parity"]
    return {"accuracy": p["accuracy"], "source": source, "samples": p.get("samples"), "of": p.get("of"),
            "torch_accuracy": p.get("torch_accuracy")}


def accuracy_of(r: Report, row: dict[str, Any]) -> dict[str, Any]:
    """``accuracy``, ``source``, ``samples``, ``of``, ``torch_accuracy`` for one latency row."""
    m = r.model(row["model"])
    n_val = r.data.get("val")
    val = row.get("validation")
    if val and val.get("accuracy") is not None:
        return {"accuracy": val["accuracy"], "source": f"{runtime_name(row['runtime'])} on the device (device kit)",
                "samples": val.get("samples"), "of": n_val, "torch_accuracy": val.get("torch_accuracy")}
    if row["format"] == "torch":
        note = " (FP32 weights)" if row["precision"] != "fp32" else ""
        return {"accuracy": m.accuracy if m else None, "source": f"PyTorch{note}", "samples": n_val, "of": n_val}
    e = _export(r, row["model"], row["format"], row["precision"])
    if e is not None:
        return _from_parity(e, f"{runtime_name(row['runtime'])} on the exported {file_name(row['format'])} itself")
    try:
        built_from = format_named(row["format"]).built_from
    except KeyError:  # a format this edgekd does not know (an imported row)
        built_from = None
    if built_from:
        src = _export(r, row["model"], built_from, "int8" if row["precision"] == "int8" else "fp32")
        if src is not None:
            rt = runtime_name(format_named(built_from).runtimes[0])
            return _from_parity(src, f"{rt} on the {file_name(built_from)} each {file_name(row['format'])} is "
                                     f"built from ({runtime_name(row['runtime'])} not run here)")
    return {"accuracy": m.accuracy if m else None, "source": "PyTorch (no runtime measurement)",
            "samples": n_val, "of": n_val}


def target_points(r: Report, target: str) -> list[Point]:
    """Every latency row of ``target`` with its accuracy in its runtime."""
    out = []
    for row in r.latency:
        if row["target"] == target:
            acc = accuracy_of(r, row)
            out.append(Point(target, row["model"], row["runtime"], row["format"], row["precision"], row["kind"],
                             row["median_ms"], **acc))
    return out


def target_kinds(r: Report) -> str:
    """``host (measured), raspberry-pi-5 (measured on the device), jetson-orin-nano (predicted)``: a
    target with a measured row (here, or imported from the device kit) is measured."""
    def kind(t: Any) -> str:
        rows = [x for x in r.latency if x["target"] == t["name"]]
        if t.get("measured_here"):
            return "measured"
        return "measured on the device" if any(x["kind"] == "measured" for x in rows) else "predicted"
    return ", ".join(f"{t['name']} ({kind(t)})" for t in r.targets)


def report_targets(r: Report) -> list[str]:
    """Targets in the report's order, then any that only latency rows name."""
    names = [t["name"] for t in r.targets]
    return names + sorted({x["target"] for x in r.latency} - set(names))


def pareto_front(points: list[Point]) -> list[Point]:
    """The points no other point beats on both latency (lower) and accuracy (higher), fastest first."""
    pts = sorted((p for p in points if p.accuracy is not None), key=lambda p: (p.ms, -p.accuracy))
    front: list[Point] = []
    for p in pts:
        if not front or p.accuracy > front[-1].accuracy:
            front.append(p)
    return front


def comparable(points: list[Point]) -> list[Point]:
    """The points one decision compares: the measured ones when a target has any, else the predictions
    (as the per-model choice does, latency/choice.py)."""
    measured = [p for p in points if p.kind == "measured"]
    return measured or points
