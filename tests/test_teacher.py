"""The teacher stage: train-if-missing writes a checkpoint edgekd reads back, in the format its suffix names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from rich.console import Console

import edgekd
from edgekd.core.errors import ConfigError
from edgekd.core.progress import Reporter


def _run(cfg: dict, **kw) -> tuple[edgekd.Report, str]:
    """Run the pipeline in-process and return the report with what it printed."""
    buf = io.StringIO()
    report = edgekd.compress(cfg, ["host"], reporter=Reporter(console=Console(file=buf, width=400)), **kw)
    return report, " ".join(buf.getvalue().split())


def _teacher_record(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())["stages"]["teacher"]["metrics"]


@pytest.mark.parametrize("name", ["missing.pt", "missing.safetensors"])
def test_a_missing_teacher_checkpoint_is_trained_saved_and_loaded_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path, as written in a model.yaml
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"]["checkpoint"] = name
    cfg["teacher"]["train"]["epochs"] = 2
    _, said = _run(cfg)
    fmt = "torch weights-only state_dict" if name.endswith(".pt") else "safetensors"
    assert f"teacher: checkpoint {name} not found, training it (teacher.train: resnet18 d1-1-1-1 w16 for 2 epochs) " \
           f"and saving it there ({fmt})" in said
    trained = _teacher_record(tmp_path / "tiny")
    assert trained["source"] == "trained"
    if name.endswith(".pt"):  # what the suffix promises, readable without edgekd
        assert "state_dict" in torch.load(tmp_path / name, weights_only=True)
    else:
        from safetensors.torch import load_file

        assert load_file(tmp_path / name)
    # a new run reads it back, as does --resume of the run that wrote it
    _, said = _run({**cfg, "name": "again"})
    assert "not found" not in said and f"(checkpoint {name})" in said
    again = _teacher_record(tmp_path / "again")
    assert again["source"] == f"checkpoint {name}" and again["accuracy"] == trained["accuracy"]
    report, said = _run(cfg, resume=True)  # the checkpoint this run wrote is not a change: nothing re-runs
    assert "not found" not in said and "settings changed" not in said
    assert "teacher: done earlier with the same inputs, skipped (--resume)" in said
    assert _teacher_record(tmp_path / "tiny")["accuracy"] == trained["accuracy"]
    assert (tmp_path / "tiny" / "report" / "report.json").exists()


def test_a_suffix_edgekd_cannot_write_is_refused_before_training(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"]["checkpoint"] = str(tmp_path / "teacher.ckpt")
    with pytest.raises(ConfigError, match=r"teacher.checkpoint .*teacher.ckpt.*accepted: \.pt, \.pth, \.safetensors"):
        _run(cfg)
    assert not (tmp_path / "teacher.ckpt").exists()
    assert not (tmp_path / "tiny" / "teacher" / "model").exists()  # refused before any epoch ran


def test_a_weak_teacher_edgekd_trained_is_loaded_again_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Trained near chance, it was a warning; read back at the accuracy recorded with it, it still is
    (not the "this run is not feeding it what it was trained on" refusal)."""
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"].update(checkpoint="weak.pt", train={"epochs": 1, "optimizer": {"lr": 1e-6}})
    report = edgekd.compress(cfg, ["host"], quiet=True)
    weak = report.model("teacher").accuracy
    assert weak < 19.0  # near chance for 10 classes
    with caplog.at_level("WARNING", logger="edgekd.stages.teacher"):
        again = edgekd.compress({**cfg, "name": "again"}, ["host"], quiet=True)
    assert again.model("teacher").accuracy == pytest.approx(weak, abs=0.01)
    assert "weak.pt reads" in caplog.text and "as when edgekd trained it" in caplog.text


def test_a_recorded_accuracy_excuses_only_a_teacher_that_still_reads_it() -> None:
    from edgekd.core.config import DataConfig, TeacherConfig
    from edgekd.core.errors import ModelError
    from edgekd.engines.data import load_data
    from edgekd.stages.teacher import check_loaded_teacher

    data, cfg = load_data(DataConfig(source="digits", image_size=8)), TeacherConfig(model="resnet18")
    check_loaded_teacher(9.0, data, cfg, Path("t.pt"), recorded=9.5)  # weak as trained: a warning
    for recorded in (None, 90.0):  # no record, or it reached far more where it was trained: misread
        with pytest.raises(ModelError, match="near chance"):
            check_loaded_teacher(9.0, data, cfg, Path("t.pt"), recorded=recorded)
