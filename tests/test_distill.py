"""The distill stage says what it cannot help: a student larger than its teacher, a student that does not build."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import STUDENT, TEACHER, tiny_config
from rich.console import Console

import edgekd
from edgekd.core.errors import ModelError
from edgekd.core.progress import Reporter


def test_a_student_larger_than_the_teacher_is_said_and_one_that_raises_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the tiny configs swapped: the teacher has 0.0919M parameters, the student 0.326M
    cfg = tiny_config(tmp_path, stages=["distill"], distill={"epochs": 1, "batch_size": 64},
                      teacher={**STUDENT, "train": {"epochs": 1, "batch_size": 64}}, student=TEACHER)
    buf = io.StringIO()
    report = edgekd.compress(cfg, ["host"], reporter=Reporter(console=Console(file=buf, width=400)))
    said = " ".join(buf.getvalue().split())
    teacher, student = report.model("teacher").params, report.model("student").params
    assert student > teacher
    assert (f"distill: the student ({student / 1e6:.3g}M params) is larger than the teacher ({teacher / 1e6:.3g}M) "
            "of its family: it will not be faster; check student.model") in said
    # a student built by the user's own function that raises: named, on the same run's teacher
    (tmp_path / "distill_students.py").write_text("def make(num_classes):\n    raise ValueError('bad width')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match=r"student.model 'distill_students:make' raised ValueError: bad width"):
        edgekd.distill({**cfg, "student": {"model": "distill_students:make"}}, ["host"], quiet=True)


def test_kd_never_ships_below_plain_training(tmp_path: Path) -> None:
    # a teacher trained at a learning rate that teaches it nothing: KD at alpha 0.9 mostly copies noise
    cfg = tiny_config(tmp_path, stages=["distill"], distill={"epochs": 3, "batch_size": 64},
                      teacher={**TEACHER, "train": {"epochs": 1, "batch_size": 64, "optimizer": {"lr": 1e-6}}})
    buf = io.StringIO()
    report = edgekd.compress(cfg, ["host"], reporter=Reporter(console=Console(file=buf, width=400)))
    d = report.comparisons["distillation"]
    assert d["without_teacher"] > d["with_teacher"] + 5  # plain training won clearly
    assert d["shipped"] == "plain"
    assert report.model("student").accuracy == pytest.approx(d["without_teacher"], abs=1e-3)  # the plain one ships
    assert "KD did not pay" in " ".join(buf.getvalue().split())
    assert (tmp_path / "tiny" / "distill" / "kd" / "model.json").exists()  # the KD student is kept


@pytest.mark.parametrize("baseline", [False, True])
def test_the_pruned_teacher_competes_with_the_searched_student(tmp_path: Path, baseline: bool) -> None:
    """Each source is judged by its better training (with the teacher or, when compare_baseline
    trains it, without): the source that can ship the more accurate student goes on."""
    cfg = tiny_config(tmp_path, stages=["search", "distill"], distill={"epochs": 2, "batch_size": 64,
                                                                      "compare_baseline": baseline})
    cfg.pop("student")
    # the 7x7 stem: a 3x3-stem student has fewer MACs than any pruning of this teacher reaches (said, not a failure)
    cfg["search"] = {"space": {"name": "resnet", "depths": [1], "widths": [8], "stems": ["7x7"]}, "batch_size": 32,
                     "constraints": {"speedup": None, "max_params_m": 0.2}}
    report = edgekd.compress(cfg, ["host"], quiet=True)
    sources = report.comparisons["student_sources"]
    assert set(sources["sources"]) == {"search", "teacher_pruned"}
    tp, searched = sources["sources"]["teacher_pruned"], sources["sources"]["search"]
    assert tp["macs"] <= report.search["chosen"]["macs"]  # pruned to the searched student's MACs (absolute budget met)
    assert tp["model"] == TEACHER["model"]
    assert all(("plain_accuracy" in s) == baseline for s in (tp, searched))

    def can_ship(s: dict) -> float:
        return max(s["accuracy"], s.get("plain_accuracy", float("-inf")))

    assert report.model("student").accuracy == pytest.approx(max(can_ship(tp), can_ship(searched)), abs=1e-3)
    assert sources["chosen"] == ("teacher_pruned" if can_ship(tp) >= can_ship(searched) else "search")
    from edgekd.engines.reporting.markdown import render_markdown
    md = render_markdown(report)
    assert "Student sources: searched (each family) vs the teacher pruned" in md and "| the trained teacher, pruned |" in md
    # the shipped model reloads with its pruning history
    from edgekd.engines.models.artifact import load_model
    model, spec = load_model(tmp_path / "tiny" / "distill" / "model")
    assert (spec.pruning_history is not None) == (sources["chosen"] == "teacher_pruned")
