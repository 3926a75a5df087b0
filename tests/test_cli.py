"""The CLI's exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.engines.reporting.schema import SCHEMA_VERSION

runner = CliRunner()


def _write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "model.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_config_error_exit_code(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    cfg["distill"]["lr"] = 0.1
    r = runner.invoke(app, ["compress", str(_write(tmp_path, cfg)), "--quiet"])
    assert r.exit_code == 2
    assert "distill.lr: unknown key" in r.output


def test_unknown_key_from_set_suggests_the_closest(tmp_path: Path) -> None:
    r = runner.invoke(app, ["compress", str(_write(tmp_path, tiny_config(tmp_path))), "--quiet",
                            "--set", "distil.epochs=2"])
    assert r.exit_code == 2
    assert "distil: unknown key; did you mean 'distill'?" in r.output


def test_unknown_target_lists_known(tmp_path: Path) -> None:
    r = runner.invoke(app, ["compress", str(_write(tmp_path, tiny_config(tmp_path))), "--target", "jetson-tx9"])
    assert r.exit_code == 10
    assert "unknown target 'jetson-tx9'" in r.output and "host" in r.output


def test_missing_checkpoint_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tmp_path)
    cfg["teacher"] = {"model": "resnet18", "checkpoint": "missing.safetensors"}  # and no teacher.train
    r = runner.invoke(app, ["compress", str(_write(tmp_path, cfg)), "--quiet"])
    assert r.exit_code == 4
    assert "teacher checkpoint not found: missing.safetensors" in r.output and "teacher.train" in r.output
    assert "Traceback" not in r.output


def _user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_an_entry_point_that_raises_is_named_and_its_traceback_is_behind_verbose(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _user_module(tmp_path, monkeypatch, "cli_raising_models",
                 "def make(num_classes, width=8):\n    raise ValueError('bad width')\n")
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"] = {"model": "cli_raising_models:make", "kwargs": {"width": 3}, "train": {"epochs": 1}}
    path = _write(tmp_path, cfg)
    r = runner.invoke(app, ["compress", str(path), "--quiet"])
    out = " ".join(r.output.split())
    assert r.exit_code == 4, r.output
    assert "teacher.model 'cli_raising_models:make' raised ValueError: bad width" in out
    assert "num_classes=10, width=3" in out  # the call edgekd makes, to try by hand
    assert "Traceback" not in r.output and "raise ValueError" not in r.output
    r = runner.invoke(app, ["compress", str(path), "--quiet", "--force", "-v"])
    assert r.exit_code == 4 and "Traceback" in r.output and "raise ValueError('bad width')" in r.output


def test_an_entry_point_that_cannot_be_imported_is_a_model_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _user_module(tmp_path, monkeypatch, "cli_broken_models", "import no_such_dependency_xyz\n")
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"] = {"model": "cli_broken_models:make", "train": {"epochs": 1}}
    r = runner.invoke(app, ["compress", str(_write(tmp_path, cfg)), "--quiet"])
    out = " ".join(r.output.split())
    assert r.exit_code == 4, r.output
    assert "teacher.model 'cli_broken_models:make': cannot import 'cli_broken_models'" in out
    assert "no_such_dependency_xyz" in out and "Traceback" not in r.output


def test_a_teacher_checkpoint_suffix_edgekd_cannot_write_is_a_config_error(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"]["checkpoint"] = str(tmp_path / "t.bin")
    r = runner.invoke(app, ["compress", str(_write(tmp_path, cfg)), "--quiet"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "accepted: .pt, .pth, .safetensors" in out and "t.pt" in out
    assert not (tmp_path / "t.bin").exists()


def test_success_json_and_existing_run(finished_run, tmp_path: Path) -> None:
    cfg, _, _ = finished_run
    p = _write(tmp_path, cfg)
    r = runner.invoke(app, ["compress", str(p), "--resume", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["schema_version"] == SCHEMA_VERSION and data["run_name"] == "tiny"
    r = runner.invoke(app, ["compress", str(p), "--quiet"])
    assert r.exit_code == 12 and "--resume" in r.output


def test_init_writes_valid_config(tmp_path: Path) -> None:
    from edgekd.core.config_file import load_config

    target = tmp_path / "m.yaml"
    r = runner.invoke(app, ["init", str(target)])
    assert r.exit_code == 0 and target.exists()
    load_config(target)
    r = runner.invoke(app, ["init", str(target)])
    assert r.exit_code == 2 and "--force" in r.output


def test_profiles_list_and_show() -> None:
    r = runner.invoke(app, ["profiles", "list"])
    assert r.exit_code == 0 and "host" in r.output
    r = runner.invoke(app, ["profiles", "show", "host"])
    assert r.exit_code == 0 and "measured_here: true" in r.output


def test_bench_any_file_measured_and_predicted(finished_run) -> None:
    _, _, run = finished_run
    onnx_path = run / "export" / "student.onnx"
    r = runner.invoke(app, ["bench", str(onnx_path), "--target", "host", "--target", "rpi", "--repeats", "5", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout[r.stdout.index("["):])
    kinds = {(x["target"], x["kind"], x["runtime"]) for x in rows}
    assert ("host", "measured", "onnxruntime") in kinds and ("raspberry-pi-5", "predicted", "onnxruntime") in kinds
    r = runner.invoke(app, ["bench", str(run / "export" / "nope.onnx")])
    assert r.exit_code == 9 and "not found" in r.output


def test_report_rerenders_a_finished_run(finished_run, tmp_path: Path) -> None:
    import shutil

    _, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    (tmp_path / "tiny" / "report" / "report.md").unlink()
    r = runner.invoke(app, ["report", str(tmp_path / "tiny"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "tiny" / "report" / "report.md").exists()
    r = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 12


def test_output_that_is_not_a_terminal_is_never_wrapped(tmp_path: Path) -> None:
    """A CI log: no TTY, no COLUMNS, a 200-character path. Each message is one line, the path whole."""
    import os
    import subprocess
    import sys

    deep = tmp_path / ("a" * 60) / ("b" * 60) / ("c" * 60)
    deep.mkdir(parents=True)
    cfg = tiny_config(tmp_path)
    good = _write(deep, cfg)
    bad = deep / "typo.yaml"
    bad.write_text(yaml.safe_dump({**cfg, "distil": {"epochs": 2}}))
    assert len(str(bad)) > 200
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgekd", "compress", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    p = run(str(bad))
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == f"error (config): {bad}: distil: unknown key; did you mean 'distill'?"
    p = run(str(good), "-t", "jetsn")
    assert p.returncode == 10
    assert p.stderr.splitlines()[0] == "error (profile): unknown target 'jetsn'; did you mean 'jetson'?"
    assert len(p.stderr.splitlines()[1]) > 300  # the list of targets and aliases: one line, not folded at 80


def test_a_set_that_names_no_key_and_a_bad_set_value_are_blamed_on_the_set(tmp_path: Path) -> None:
    path = _write(tmp_path, tiny_config(tmp_path))
    r = runner.invoke(app, ["compress", str(path), "--quiet", "--set", "=3"])
    assert r.exit_code == 2 and "--set '=3': no key before '='" in r.output
    r = runner.invoke(app, ["compress", str(path), "--quiet", "--set", "distill.epochs=-1"])
    assert r.exit_code == 2 and "--set distill.epochs=-1: distill.epochs" in r.output
    assert str(path) not in r.output  # not the file's fault


def test_log_format_json_is_one_object_per_event(tmp_path: Path) -> None:
    """Pipelines parse the log: every stdout line is a JSON object; stages, epochs and each target's
    deployment are events; an error is one object on stderr with its exit code."""
    cfg = tiny_config(tmp_path)
    cfg["teacher"]["train"]["epochs"] = 1
    cfg["distill"]["epochs"] = 1
    cfg["export"] = {"formats": ["onnx"]}
    path = _write(tmp_path, cfg)
    r = runner.invoke(app, ["compress", str(path), "--log-format", "json", "-t", "host"])
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert {"stage_started", "stage_done", "epoch", "deploy", "report"} <= set(kinds)
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["stage"] == "teacher" and epoch["epochs"] == 1 and 0 <= epoch["accuracy"] <= 100
    deploy = next(e for e in events if e["event"] == "deploy")
    assert deploy["target"] == "host" and deploy["file"].endswith(".onnx") and deploy["median_ms"] > 0
    bad = _write(tmp_path, {**cfg, "distil": {}})
    r = runner.invoke(app, ["compress", str(bad), "--log-format", "json"])
    error = json.loads(r.stderr.strip().splitlines()[-1])
    assert r.exit_code == 2 and error["event"] == "error" and error["exit_code"] == 2 and "distil" in error["message"]
