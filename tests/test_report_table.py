"""The end-of-run table: real statuses, the latency budget, flagged contradictory predictions,
readable model names, escaped markup; and the CI gates computed from a report."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from edgekd.engines.models.names import display_name
from edgekd.engines.reporting.choice import choose
from edgekd.engines.reporting.gates import evaluate_gates, gate_spec
from edgekd.engines.reporting.markdown import render_markdown
from edgekd.engines.reporting.schema import ModelRow, Report
from edgekd.engines.reporting.terminal import summary_table
from edgekd.engines.reporting.verdicts import contradictions, row_status


def _row(model: str, target: str, backend: str, fmt: str, prec: str, ms: float, kind: str, **extra: Any) -> dict:
    return {"model": model, "target": target, "runtime": backend, "format": fmt, "precision": prec,
            "median_ms": ms, "kind": kind, "batch_size": 1, **extra}


def _export(model: str, fmt: str, prec: str, status: str = "ok", target: str | None = None, **extra: Any) -> dict:
    return {"model": model, "format": fmt, "precision": prec, "status": status, "target": target, **extra}


def report(**over: Any) -> Report:
    """Host measured, a Jetson predicted (a TensorRT engine deferred), a Pi predicted; every contradiction."""
    latency = [
        _row("teacher", "host", "onnxruntime", "onnx", "fp32", 2.0, "measured"),
        _row("student", "host", "onnxruntime", "onnx", "fp32", 0.5, "measured"),
        _row("quantized", "host", "onnxruntime", "onnx", "int8", 0.9, "measured"),  # measured: never flagged
        _row("teacher", "jetson-orin-nano", "tensorrt", "tensorrt", "fp16", 0.3, "predicted"),
        _row("student", "jetson-orin-nano", "tensorrt", "tensorrt", "fp16", 0.4, "predicted"),  # teacher faster
        _row("quantized", "jetson-orin-nano", "tensorrt", "tensorrt", "int8", 7.0, "predicted"),  # int8 slower
        _row("student", "raspberry-pi-5", "onnxruntime", "onnx", "fp32", 3.0, "predicted"),
        _row("quantized", "raspberry-pi-5", "onnxruntime", "onnx", "int8", 2.0, "predicted"),
        _row("student", "jetson-orin-nano", "onnxruntime", "onnx", "fp32", 1.0, "measured", source="device kit",
             validation={"accuracy": 80.0, "torch_accuracy": 93.0}),  # lost 13 points on the device
    ]
    exports = [_export("teacher", "onnx", "fp32"), _export("student", "onnx", "fp32"),
               _export("quantized", "onnx", "int8"),
               _export("quantized", "tensorrt", "int8", "deferred", "jetson-orin-nano", note="built on the device",
                       command="python3 edgekd_kit.py build-engine quantized.onnx --precision int8"),
               _export("student", "openvino", "fp16", "failed", parity={"accuracy": 61.0})]
    models = [ModelRow(label="teacher", model="resnet18", name="resnet18", accuracy=98.0),
              ModelRow(label="student", model="edgekd.engines.search.builders:mobilenetv3",
                       kwargs={"size": "small", "width": 0.5, "depth": 0.75}, name="mobilenetv3 w0.5 d0.75",
                       accuracy=93.0, runtime_accuracy={"onnx fp32 (onnxruntime)": 92.9}),
              ModelRow(label="quantized", model="edgekd.engines.search.builders:mobilenetv3",
                       name="mobilenetv3 w0.5 d0.75", accuracy=92.0, runtime_accuracy={"onnx int8 (onnxruntime)": 91.5})]
    fields: dict[str, Any] = dict(
        edgekd_version="0", run_name="[bold]demo[/bold]", run_dir="runs/demo", created="now", latency=latency,
        exports=exports, models=models, choices=choose(latency),
        targets=[{"name": "host", "measured_here": True, "latency_budget_ms": 1.0},
                 {"name": "jetson-orin-nano", "measured_here": False, "latency_budget_ms": 5.0},
                 {"name": "raspberry-pi-5", "measured_here": False, "latency_budget_ms": 30.0}])
    fields.update(over)
    return Report(**fields)


def _render(table: Any) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def _line(text: str, *words: str) -> str:
    return next(line for line in text.splitlines() if all(w in line for w in words))


def test_statuses_budget_and_flags_in_the_table() -> None:
    r = report()
    text = _render(summary_table(r))
    assert "✅" in _line(text, "host", "teacher", "onnxruntime")
    assert "⏳" in _line(text, "quantized", "jetson-orin-nano", "tensorrt")  # the engine is built on the device
    assert "❌" in _line(text, "student", "jetson-orin-nano", "onnxruntime")  # device accuracy fell off
    assert "❎" in _line(text, "student", "openvino", "validation failed")
    assert "✗ >1" in _line(text, "teacher", "host", "onnxruntime") and "✓ ≤1" in _line(text, "student", "host")
    assert "✗ >5" in _line(text, "quantized", "jetson-orin-nano") and "✓ ≤30" in _line(text, "raspberry-pi-5", "int8")
    assert "⚠" not in _line(text, "quantized", "host")  # a measured INT8 slower than FP32 is a finding
    assert "the teacher is predicted faster than student" in text and "INT8 is predicted slower" in text
    assert "mobilenetv3 w0.5 d0.75" in text and "builders:" not in text
    assert "[bold]demo[/bold]" in text  # the run's name is text, not markup


def test_a_run_without_latency_lists_its_models_in_pytorch() -> None:
    """Stages up to quantize only: the quantized model is NNCF's fake-quant module, INT8 simulated."""
    text = _render(summary_table(report(latency=[], exports=[], choices={})))
    assert "fp32" in _line(text, "teacher", "torch") and "92.00%" in _line(text, "quantized", "torch")
    assert "int8 (simulated)" in _line(text, "quantized", "torch") and "fp32" not in _line(text, "quantized")


def test_contradictions_name_the_pair() -> None:
    r = report()
    flags = {f.message.split(" (")[0] for f in contradictions(r)}
    assert flags == {"jetson-orin-nano: the teacher is predicted faster than student",
                     "jetson-orin-nano: quantized INT8 is predicted slower than FP16 of student, its float model"}
    assert [row_status(r, x) for x in r.latency].count("deferred") == 3  # every predicted TensorRT row


def test_readable_names() -> None:
    b = "edgekd.engines.search.builders:"
    assert display_name(f"{b}mobilenetv3", {"size": "small", "width": 0.5, "depth": 0.75}) == "mobilenetv3 w0.5 d0.75"
    assert display_name(f"{b}mobilenetv3", {"size": "large", "width": 1.0, "depth": 1.0}) == "mobilenetv3 large w1 d1"
    assert display_name(f"{b}efficientnet", {"width": 1.1, "depth": 1.2}) == "efficientnet w1.1 d1.2"
    assert display_name("torchvision.models:shufflenet_v2_x0_5") == "torchvision shufflenet_v2_x0_5"
    assert display_name("resnet18") == "resnet18"
    assert display_name("resnet18", {"layers": [1, 2, 1, 1], "channels": [16, 32, 64, 128]}) == "resnet18 d1-2-1-1 w16"
    assert display_name("resnet18", {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_type": "deep",
                                     "stem_width": 4}) == "resnet18 d1-1-1-1 w8 stem-deep4"


def test_markdown_shows_readable_architectures() -> None:
    md = render_markdown(report())
    assert "| student | mobilenetv3 w0.5 d0.75 |" in md and "builders:mobilenetv3 |" not in md


def test_gates_on_the_chosen_model_per_target() -> None:
    r = report()
    gates = {(g.name, g.target): g for g in evaluate_gates(r, gate_spec(92.0, "budget"))}
    host = gates["accuracy", "host"]
    assert (host.model, host.value, host.runtime, host.passed) == ("quantized", 91.5, "onnx int8 (onnxruntime)", False)
    lat = gates["latency", "host"]
    assert (lat.value, lat.threshold, lat.passed) == (0.9, 1.0, True)
    jet = gates["latency", "jetson-orin-nano"]
    assert (jet.value, jet.threshold, jet.passed) == (7.0, 5.0, False)
    assert "tensorrt did not run here" in gates["accuracy", "jetson-orin-nano"].runtime  # its ONNX INT8 accuracy
    assert all(g.passed for g in evaluate_gates(r, gate_spec(90.0, 10)) if g.target != "jetson-orin-nano")
    assert evaluate_gates(r, gate_spec()) == []


@pytest.mark.parametrize("bad", ["fast", "-1", "0"])
def test_bad_latency_gate_is_a_config_error(bad: str) -> None:
    from edgekd.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--fail-over-latency"):
        gate_spec(None, bad)
    assert gate_spec(None, "2.5ms").max_latency == 2.5 and gate_spec(None, "BUDGET").max_latency == "budget"


def test_choice_resolves_aliases() -> None:
    r = report()
    assert r.choice("jetson")["quantized"]["precision"] == "int8"
    assert r.choice("rpi") is r.choices["raspberry-pi-5"]
    with pytest.raises(KeyError, match="not a target of this report"):
        r.choice("nano")
