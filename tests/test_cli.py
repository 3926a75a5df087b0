"""The CLI's exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import tiny_config
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.reporting.schema import SCHEMA_VERSION

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


def test_missing_checkpoint_exit_code(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    cfg["teacher"] = {"model": "resnet18", "checkpoint": str(tmp_path / "missing.safetensors")}
    r = runner.invoke(app, ["compress", str(_write(tmp_path, cfg)), "--quiet"])
    assert r.exit_code == 4
    assert "teacher checkpoint not found" in r.output


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
    kinds = {(x["target"], x["kind"], x["backend"]) for x in rows}
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
