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
    assert (f"distill: the student ({student / 1e6:.3g}M params) is larger than the teacher ({teacher / 1e6:.3g}M): "
            "it will not be faster; check student.model") in said
    # a student built by the user's own function that raises: named, on the same run's teacher
    (tmp_path / "distill_students.py").write_text("def make(num_classes):\n    raise ValueError('bad width')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match=r"student.model 'distill_students:make' raised ValueError: bad width"):
        edgekd.distill({**cfg, "student": {"model": "distill_students:make"}}, ["host"], quiet=True)
