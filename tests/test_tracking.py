"""MLflow tracking against a real local store: one run, a nested run per stage, params,
per-epoch metric histories and artifacts read back with MLflow's own client."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import tiny_config

import edgekd
from edgekd.core.errors import ConfigError


def test_tracking_key_without_mlflow_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow → ImportError
    cfg = tiny_config(tmp_path, tracking={"mlflow": {"uri": f"sqlite:///{tmp_path}/mlflow.db"}})
    with pytest.raises(ConfigError, match="tracking.mlflow is set, but MLflow is not installed") as exc:
        edgekd.compress(cfg, ["host"], quiet=True)
    assert "edgekd[mlflow]" in (exc.value.hint or "")
    assert not (tmp_path / "tiny").exists()  # refused before any work


def test_no_tracking_without_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekd.core.config import Config
    from edgekd.engines.tracking.mlflow_log import Tracker, make_tracker

    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")  # the variable alone: no tracking
    assert type(make_tracker(Config.model_validate(tiny_config(tmp_path)))) is Tracker


def test_a_run_is_logged_with_a_nested_run_per_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # used because tracking.mlflow is present without a uri
    cfg = tiny_config(tmp_path, stages=["distill", "export", "report"], threads=1,
                      tracking={"mlflow": {"experiment": "tiny-kd", "artifact_location": str(tmp_path / "art")}})
    cfg["teacher"]["train"]["epochs"] = 2
    cfg["distill"]["epochs"] = 3
    edgekd.compress(cfg, ["host"], quiet=True, command="edgekd compress tiny.yaml")

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny-kd")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.info.run_name == "tiny" and parent.data.tags["edgekd.command"] == "edgekd compress tiny.yaml"
    assert parent.data.params["distill.epochs"] == "3" and parent.data.params["seed"] == "0"
    assert "config.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    stages = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(stages) == {"teacher", "distill", "export", "report"}

    distill = stages["distill"]
    assert distill.data.params["distill.epochs"] == "3" and distill.data.params["distill.loss.0.name"] == "kl"
    history = client.get_metric_history(distill.info.run_id, "val_accuracy")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3]
    assert distill.data.metrics["accuracy"] == max(m.value for m in history)
    assert len(client.get_metric_history(stages["teacher"].info.run_id, "train_loss")) == 2

    exported = {a.path for a in client.list_artifacts(stages["export"].info.run_id)}
    assert {"student.onnx", "teacher.onnx", "student_fp32.xml", "student_fp32.bin", "exports.json"} <= exported
    reported = {a.path for a in client.list_artifacts(stages["report"].info.run_id)}
    assert {"report.json", "report.md", "report.html"} <= reported
