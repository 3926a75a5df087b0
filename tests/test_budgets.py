"""The run's budgets: walls the user wrote, goals the defaults set, decided before training.

A default speed-up a target cannot reach (a launch-bound GPU) becomes the best that target
reaches and the run ships, saying so; a budget the user wrote that no candidate reaches fails
in seconds, before the teacher trains; targets that pull apart are settled by the closest
candidate and the binding target is named.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from conftest import TEACHER, tiny_config
from typer.testing import CliRunner

import edgekd
from edgekd.cli import app
from edgekd.core.budgets import Reach
from edgekd.core.config import Config
from edgekd.core.profiles import resolve_target
from edgekd.engines.budgets import RunBudgets, TargetBudget
from edgekd.engines.budgets.resolve import GOAL_MARGIN, settle_at_start, written_by_user
from edgekd.engines.budgets.settle import settle_jointly
from edgekd.engines.reporting.deploy import recommend
from edgekd.engines.reporting.gates import GateSpec, evaluate_gates
from edgekd.engines.reporting.schema import ModelRow, Report

SPACE = {"name": "resnet", "depths": [1], "widths": [8, 16], "stems": ["7x7", "3x3"]}  # 4 candidates


def _lat(ms: float, kind: str = "predicted") -> dict:
    return {"ms": ms, "kind": kind, "runtime": "x", "precision": "fp32", "target": "t"}


def _budget(target: str, ms: float, *, wall: bool = False, teacher_ms: float = 1.0, fastest: float | None = None
            ) -> TargetBudget:
    return TargetBudget(target, ms, f"teacher {teacher_ms} ms / 4", 4.0, _lat(teacher_ms), wall,
                        reach=Reach(fastest_ms=fastest, fastest="a") if fastest is not None else None)


def test_only_what_the_user_wrote_is_a_wall() -> None:
    jetson, host = resolve_target("jetson")[0], resolve_target("host")[0]

    def c(search: dict | None) -> object:
        raw = tiny_config(Path("/nonexistent"))
        raw["search"] = search or {}
        return Config.model_validate(raw).search.constraints

    assert not written_by_user(c(None), jetson)  # the default k: a goal
    assert written_by_user(c({"constraints": {"speedup": 4}}), jetson)  # the same number, written: a wall
    assert written_by_user(c({"constraints": {"latency_ms": 1}}), host)
    per = c({"constraints": {"speedup": {"jetson": 2}}})
    assert written_by_user(per, jetson) and not written_by_user(per, host)  # host falls to the default goal
    assert not written_by_user(c({"constraints": {"speedup": None}}), host)  # the profile's budget


def test_a_goal_out_of_reach_is_lowered_to_what_the_target_reaches_and_says_why() -> None:
    b = RunBudgets({"host": _budget("host", 0.25, fastest=0.1), "jetson-orin-nano": _budget("jetson-orin-nano", 0.1,
                                                                                           fastest=0.19)})
    settled = settle_at_start(b)
    host, jet = settled["host"], settled["jetson-orin-nano"]
    assert host.ms == 0.25 and not host.lowered and host.why is None  # reachable: unchanged
    assert jet.lowered and jet.ms == pytest.approx(0.19 * GOAL_MARGIN) and jet.asked == 0.1
    assert "out of reach on jetson-orin-nano" in jet.why and "5.26× the teacher" in jet.why
    assert jet.summary()["reachable_speedup"] == pytest.approx(1 / 0.19, rel=1e-3)
    assert any("2.50× margin" in n for n in settled.notes)


def test_targets_that_pull_apart_settle_on_the_closest_candidate_and_name_the_binding_target() -> None:
    """host wants narrow (a), the GPU wants shallow (b): each goal is reachable alone, not together."""
    b = RunBudgets({"host": _budget("host", 0.10), "jetson-orin-nano": _budget("jetson-orin-nano", 0.20)})
    cands = [("a", {"host": _lat(0.05), "jetson-orin-nano": _lat(0.30)}, True),
             ("b", {"host": _lat(0.20), "jetson-orin-nano": _lat(0.15)}, True),
             ("c", {"host": _lat(0.11), "jetson-orin-nano": _lat(0.24)}, True)]  # the closest: 1.2× worst
    settled = settle_jointly(b, cands)
    assert settled is not None
    host, jet = settled["host"], settled["jetson-orin-nano"]
    assert host.ms == pytest.approx(0.11 * GOAL_MARGIN) and jet.ms == pytest.approx(0.24 * GOAL_MARGIN)
    assert "the closest, c" in jet.why and "jetson-orin-nano bounds the choice" in jet.why
    # a wall never moves: with host written by the user, the goal on the GPU alone is loosened
    walled = RunBudgets({"host": _budget("host", 0.12, wall=True), "jetson-orin-nano": _budget("jetson-orin-nano", 0.2)})
    settled = settle_jointly(walled, [(k, lat, lat["host"]["ms"] <= 0.12) for k, lat, _ in cands])
    assert settled is not None and settled["host"].ms == 0.12 and "the closest, c" in settled["jetson-orin-nano"].why
    assert settle_jointly(walled, [(k, lat, False) for k, lat, _ in cands]) is None  # nothing meets the wall


def _search_run(tmp_path: Path, **search) -> dict:
    raw = tiny_config(tmp_path, stages=["search"])
    raw.pop("student")
    raw["teacher"] = dict(TEACHER)
    raw["search"] = {"space": dict(SPACE), "batch_size": 32, **search}
    return raw


def test_an_unreachable_default_on_a_gpu_target_ships_with_a_stated_reason(tmp_path: Path) -> None:
    """The default 4× on jetson-orin-nano (launch-bound at 16 px): the search still chooses, the budget
    there is the best the space reaches, and the report states asked and reached per target."""
    raw = _search_run(tmp_path)
    raw["stages"] = ["search", "distill", "export", "bench", "report"]
    # a full-depth teacher: at 16 px the students reach about 2× on the GPU, not 4×
    raw["teacher"] = {"model": "resnet18", "train": {"epochs": 1, "batch_size": 64, "optimizer": {"lr": 0.05}}}
    raw["distill"] = {"epochs": 1, "batch_size": 64, "teacher_pruned": False, "compare_baseline": False}
    raw["export"] = {"formats": ["onnx"]}
    raw["report"] = {"max_accuracy_drop": None}  # one epoch each: accuracy is not what this test is about
    report = edgekd.compress(raw, ["jetson"], quiet=True)
    jet = next(t for t in report.targets if t["name"] == "jetson-orin-nano")
    b = jet["budget"]
    assert b["asked_speedup"] == 4 and not b["wall"] and b["lowered"]
    assert b["speedup"] < 4 and "out of reach on jetson-orin-nano" in b["why"]
    assert "is what this target reaches" in jet["budget_basis"]
    d = report.deployment["jetson-orin-nano"]
    assert d["model"] == "student" and d["median_ms"] <= jet["latency_budget_ms"]
    assert report.search["chosen"]["latency"]["jetson-orin-nano"]["ms"] <= jet["latency_budget_ms"]
    # the candidates probed before training are not timed again by the search: the same numbers
    import json

    run = Path(report.run_dir)
    probes = json.loads((run / "budgets.json").read_text())["budgets"]["probes"]
    timed = {c["key"]: c["latency"] for c in json.loads((run / "search" / "candidates.json").read_text())}
    assert probes and all(timed[k] == v for k, v in probes.items())


def test_an_unreachable_budget_the_user_wrote_exits_11_before_the_teacher_trains(tmp_path: Path) -> None:
    raw = _search_run(tmp_path, constraints={"speedup": 4})  # written: a wall
    raw["stages"] = ["search", "distill", "report"]
    raw["teacher"] = {**TEACHER, "train": {"epochs": 50}}  # minutes, if it ever trained
    raw["distill"] = {"epochs": 50}
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(raw))
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, ["compress", str(path), "--target", "jetson", "--quiet"])
    seconds = time.perf_counter() - t0
    assert r.exit_code == 11, r.output
    assert "cannot be reached on jetson-orin-nano" in r.output and "(checked before training)" in r.output
    assert "fastest candidate" in r.output and "fix: lower search.constraints.speedup to at most" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "tiny" / "teacher" / "model").exists()  # the teacher never trained
    assert seconds < 60


def _floor_report(student_acc: float) -> Report:
    rows = [{"model": m, "target": "host", "runtime": "onnxruntime", "format": "onnx", "precision": "fp32",
             "median_ms": ms, "kind": "measured", "batch_size": 1} for m, ms in (("teacher", 2.0), ("student", 0.3))]
    acc = {"teacher": 97.5, "student": student_acc}
    exports = [{"model": r["model"], "format": "onnx", "precision": "fp32", "status": "ok", "path": f"{r['model']}.onnx",
                "parity": {"accuracy": acc[r["model"]], "samples": 100, "of": 100}} for r in rows]
    return Report(edgekd_version="0", run_name="t", run_dir="runs/t", created="now", latency=rows, exports=exports,
                  models=[ModelRow(label=m, model="resnet18", accuracy=a) for m, a in acc.items()], data={"val": 100},
                  targets=[{"name": "host", "measured_here": True, "latency_budget_ms": 0.5}])


def test_a_default_pick_never_ships_a_file_far_below_the_teacher_in_silence() -> None:
    r = _floor_report(45.8)
    d = recommend(r)["host"]  # default floor: 2 points under the teacher
    assert d["model"] == "student" and d["accuracy_floor"] == {"max_drop": 2.0, "teacher": 97.5, "floor": 95.5,
                                                                "met": False}
    assert "none is within the allowed drop of the teacher" in d["reason"] and "distill.epochs" in d["reason"]
    r.deployment = {"host": d}
    gates = evaluate_gates(r, GateSpec())
    assert [(g.name, g.passed) for g in gates] == [("accuracy_floor", False)]  # the run exits 13
    assert recommend(r, max_drop=None)["host"]["accuracy_floor"] is None  # floor turned off: no gate
    ok = _floor_report(96.0)
    ok.deployment = recommend(ok)
    assert [(g.name, g.passed) for g in evaluate_gates(ok, GateSpec())] == [("accuracy_floor", True)]


def test_gates_judge_the_file_each_target_ships() -> None:
    r = _floor_report(96.0)
    r.models.append(ModelRow(label="quantized", model="resnet18", accuracy=90.0))  # the final model, not shipped
    r.deployment = recommend(r)
    gates = {g.name: g for g in evaluate_gates(r, GateSpec(min_accuracy=95.5, max_latency="budget"))}
    assert gates["accuracy"].passed and gates["accuracy"].model == "student" and gates["accuracy"].value == 96.0
    assert gates["latency"].passed and gates["latency"].value == 0.3
