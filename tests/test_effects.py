"""What distillation changed beyond top-1: ECE and per-class accuracy, and the distill stage's record of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import edgekd
from edgekd.engines.train.effects import (
    class_changes,
    distillation_effects,
    expected_calibration_error,
    per_class_accuracy,
)


def _logits_with_confidence(conf: list[float], pred: list[int], classes: int = 2) -> torch.Tensor:
    """Logits whose softmax puts ``conf`` on ``pred`` and spreads the rest evenly."""
    rows = []
    for c, p in zip(conf, pred, strict=True):
        probs = torch.full((classes,), (1 - c) / (classes - 1))
        probs[p] = c
        rows.append(probs.log())
    return torch.stack(rows)


def test_ece_matches_the_standard_definition() -> None:
    # 10 images at confidence 0.9, 8 right: one bin, |0.8 - 0.9| = 0.1
    logits = _logits_with_confidence([0.9] * 10, [0] * 10)
    labels = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(logits, labels) == pytest.approx(0.1, abs=1e-6)
    # two bins weighted by their share: 4 at 0.6 (all right: |1 - 0.6|), 6 at 0.95 (3 right: |0.5 - 0.95|)
    logits = _logits_with_confidence([0.6] * 4 + [0.95] * 6, [0] * 10)
    labels = torch.tensor([0] * 4 + [0, 0, 0, 1, 1, 1])
    assert expected_calibration_error(logits, labels) == pytest.approx(0.4 * 0.4 + 0.6 * 0.45, abs=1e-6)
    # perfectly calibrated: confidence 0.75, three of four right
    logits = _logits_with_confidence([0.75] * 4, [1] * 4)
    assert expected_calibration_error(logits, torch.tensor([1, 1, 1, 0])) == pytest.approx(0.0, abs=1e-6)
    # 15 bins: 0.70 and 0.72 share the bin (2/3, 11/15]; 0.58 sits alone in (8/15, 9/15]
    logits = _logits_with_confidence([0.70, 0.72, 0.58], [0, 0, 0])
    ece = expected_calibration_error(logits, torch.tensor([0, 1, 0]))
    assert ece == pytest.approx((2 / 3) * abs(0.5 - 0.71) + (1 / 3) * abs(1 - 0.58), abs=1e-6)


def test_per_class_accuracy_and_changes() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    a = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 0, 2, 2, 2, 0]), 4).float()
    b = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 2, 0, 0, 0]), 4).float()
    assert per_class_accuracy(a, labels, 4) == [100.0, 50.0, 75.0, None]  # class 3 has no images
    ch = class_changes(per_class_accuracy(a, labels, 4), per_class_accuracy(b, labels, 4),
                       ["zero", "one", "two", "three"], [2, 2, 4, 0])
    assert ch["gains"] == [{"class": "two", "points": 50.0, "images": 4}, {"class": "zero", "points": 50.0, "images": 2}]
    assert ch["losses"] == [{"class": "one", "points": -50.0, "images": 2}] and ch["unchanged"] == 0
    eff = distillation_effects({"student": a, "baseline": b}, labels, ["zero", "one", "two", "three"])
    assert eff["accuracy"] == {"student": 75.0, "baseline": 50.0} and eff["per_class"]["images"] == [2, 2, 4, 0]
    assert set(eff["changes"]) == {"student_vs_baseline"}


def test_distill_records_calibration_and_per_class_changes(tmp_path: Path) -> None:
    """With compare_baseline the report holds ECE of teacher, student and baseline, computed on every
    validation image (the same accuracies the stage reports), and the HTML shows KD vs no-KD."""
    cfg = tiny_config(tmp_path, stages=["distill", "report"],
                      distill={"epochs": 1, "batch_size": 64, "compare_baseline": True})
    cfg["teacher"]["train"]["epochs"] = 2
    report = edgekd.compress(cfg, ["host"], quiet=True)
    e = report.distillation_effects
    assert set(e["ece"]) == {"teacher", "student", "baseline"} and e["ece_bins"] == 15
    assert all(0 <= v <= 1 for v in e["ece"].values())
    assert e["samples"] == report.data["val"]
    kd = report.comparisons["distillation"]  # "student" in the effects is the KD student, whichever one shipped
    assert e["accuracy"]["student"] == pytest.approx(kd["with_teacher"], abs=1e-3)
    shipped = kd["with_teacher"] if kd["shipped"] == "kd" else kd["without_teacher"]
    assert report.model("student").accuracy == pytest.approx(shipped, abs=1e-3)
    plain = kd["names"]["without_teacher"]  # "student" when it shipped, else "student (no teacher)"
    assert e["accuracy"]["baseline"] == pytest.approx(report.model(plain).accuracy, abs=1e-3)
    kd_name = kd["names"]["with_teacher"]  # the other name is the other student: never two models called "student"
    assert {kd_name, plain} == ({"student", "student (KD)"} if kd["shipped"] == "plain"
                                else {"student", "student (no teacher)"})
    assert report.model(kd_name).accuracy == pytest.approx(kd["with_teacher"], abs=1e-3)
    assert e["accuracy"]["teacher"] == pytest.approx(report.model("teacher").accuracy, abs=1e-3)
    assert set(e["changes"]) == {"student_vs_baseline", "student_vs_teacher"}
    pc = e["per_class"]
    assert len(pc["classes"]) == len(pc["student"]) == len(pc["baseline"]) == 10 and sum(pc["images"]) == e["samples"]
    on_disk = json.loads((tmp_path / "tiny" / "report" / "report.json").read_text())
    assert on_disk["distillation_effects"]["ece"] == e["ece"]
    page = (tmp_path / "tiny" / "report" / "report.html").read_text()
    assert f"{plain}, labels only" in page and f"{kd_name}, with the teacher" in page and "Not measured" not in page
    assert f"per-class change vs {plain}" in page and f"{kd_name} vs {plain}" in page
