"""The file to ship per target: the Pareto choice under the budget, and stages that did not pay."""

from __future__ import annotations

from typing import Any

from edgekd.reporting.deploy import recommend, unpaid
from edgekd.reporting.points import Point, pareto_front
from edgekd.reporting.schema import ModelRow, Report


def _row(model: str, ms: float, prec: str = "fp32", target: str = "host") -> dict[str, Any]:
    return {"model": model, "target": target, "backend": "onnxruntime", "format": "onnx", "precision": prec,
            "median_ms": ms, "kind": "measured", "batch_size": 1}


def _report(rows: list[dict[str, Any]], acc: dict[str, float], budget: float | None) -> Report:
    exports = [{"model": r["model"], "format": "onnx", "precision": r["precision"], "status": "ok",
                "path": f"export/{r['model']}.onnx", "parity": {"accuracy": acc[r["model"]], "samples": 100, "of": 100}}
               for r in rows]
    models = [ModelRow(label=m, model="resnet18", accuracy=a) for m, a in acc.items()]
    return Report(edgekd_version="0", run_name="t", run_dir="runs/t", created="now", latency=rows, exports=exports,
                  models=models, data={"val": 100},
                  targets=[{"name": "host", "measured_here": True, "latency_budget_ms": budget}])


def test_pareto_choice_on_a_table_of_rows() -> None:
    acc = {"teacher": 95.0, "student": 94.2, "pruned": 94.0, "quantized": 91.0}
    rows = [_row("teacher", 2.0), _row("student", 0.6), _row("pruned", 0.3), _row("quantized", 0.2, "int8")]
    pick = recommend(_report(rows, acc, budget=0.5))["host"]
    # inside 0.5 ms: pruned and quantized; the most accurate is pruned (quantized loses 3 points)
    assert (pick["model"], pick["median_ms"]) == ("pruned", 0.3)
    assert pick["speedup_vs_teacher_best"] == round(2.0 / 0.3, 3)
    assert pick["did_not_pay"] == []
    front = pareto_front([Point("host", r["model"], "onnxruntime", "onnx", r["precision"], "measured",
                                r["median_ms"], acc[r["model"]], "x") for r in rows])
    assert [p.model for p in front] == ["quantized", "pruned", "student", "teacher"]
    # no budget: the most accurate file, or the fastest within the slack of it; the teacher competes
    assert recommend(_report(rows, acc, budget=None), slack=0.5)["host"]["model"] == "teacher"
    acc["student"] = 94.6  # now within 0.5 points of the teacher, and faster
    assert recommend(_report(rows, acc, budget=None), slack=0.5)["host"]["model"] == "student"


def test_the_accuracy_slack_trades_points_for_speed() -> None:
    """Default 1 point: the fastest file in the budget within 1 point of the most accurate ships
    (digits: the INT8 file 0.84 points under the plain student, 1.3x faster); 0: the most accurate."""
    acc = {"teacher": 98.6, "student": 99.2, "pruned": 98.3, "quantized": 98.3}
    rows = [_row("teacher", 0.80), _row("student", 0.19), _row("pruned", 0.15), _row("quantized", 0.14, "int8")]
    pick = recommend(_report(rows, acc, budget=0.2))["host"]
    assert (pick["model"], pick["precision"]) == ("quantized", "int8")
    assert "within 1 point of the most accurate (student, 99.20%)" in pick["reason"]
    assert recommend(_report(rows, acc, budget=0.2), slack=0.0)["host"]["model"] == "student"
    acc["quantized"] = 98.1  # 1.1 points under the student: outside the slack; the pruned file ships
    assert recommend(_report(rows, acc, budget=0.2))["host"]["model"] == "pruned"


def test_a_stage_that_does_not_pay_is_not_chosen() -> None:
    # INT8 slower than its FP32 input and less accurate (MobileNetV3 in ONNX Runtime): it did not pay
    acc = {"teacher": 95.0, "student": 94.0, "pruned": 94.0, "quantized": 94.0}
    rows = [_row("teacher", 2.0), _row("student", 0.40), _row("pruned", 0.45), _row("quantized", 0.9, "int8")]
    r = _report(rows, acc, budget=1.0)
    skipped = {u["model"]: u for u in recommend(r)["host"]["did_not_pay"]}
    assert set(skipped) == {"pruned", "quantized"}
    assert skipped["pruned"]["input"] == "student" and skipped["quantized"]["input"] == "pruned"
    pick = recommend(r)["host"]
    assert pick["model"] == "student" and "did not pay here" in pick["reason"]
    # a slower output that is more accurate is a trade-off, not a failure to pay
    acc["pruned"] = 94.6
    assert [u["model"] for u in unpaid([Point("host", x["model"], "onnxruntime", "onnx", x["precision"], "measured",
                                              x["median_ms"], acc[x["model"]], "x") for x in rows])] == ["quantized"]
