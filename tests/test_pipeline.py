"""End to end on a tiny config: report contents, resume, failures that keep finished stages."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config
from rich.console import Console

import edgekd
from edgekd.core.errors import ExportError, RunDirError
from edgekd.core.progress import Reporter
from edgekd.engines.reporting.schema import SCHEMA_VERSION
from edgekd.pipeline import rerun_reason, settings_diff


def test_report_files_and_contents(finished_run) -> None:
    _, report, run = finished_run
    for f in ("report.json", "report.md", "report.html"):
        assert (run / "report" / f).exists()
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    names = data["comparisons"]["distillation"]["names"]  # compare_baseline: auto: the second student, named
    assert {m["label"] for m in data["models"]} == {"teacher", *names.values()}
    assert "student" in names.values() and len(set(names.values())) == 2
    student = report.model("student")
    assert student.accuracy > 20 and student.runtime_accuracy["onnx fp32 (onnxruntime)"] == pytest.approx(student.accuracy)
    # every latency says what it is
    for row in data["latency"]:
        assert row["kind"] == "measured" and row["target"] == "host"
        assert row["batch_size"] == 1 and row["runtime_version"] and row["device"] in ("cpu", "cuda")
        assert row["threads"] or row["device"] == "cuda"  # CPU threads say nothing about a GPU run
        assert row["p90_ms"] >= row["median_ms"] > 0
    assert {(r["model"], r["runtime"]) for r in data["latency"]} == {
        (m, b) for m in ("teacher", "student") for b in ("torch", "onnxruntime", "openvino")}
    # the student in ONNX Runtime is faster than the teacher in PyTorch eager
    assert report.speedups["student"]["speedup_vs_teacher_eager"] > 1.5
    md = (run / "report" / "report.md").read_text()
    assert "| student | resnet18 d1-1-1-1 w8 |" in md and "teacher on its best runtime" in md  # readable name
    manifest = json.loads((run / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["teacher", "distill", "export", "bench", "report"]
    assert all(len(a["sha256"]) == 64 for s in manifest["stages"].values() for a in s["artifacts"].values())
    assert yaml.safe_load((run / "config.yaml").read_text())["name"] == "tiny"


def test_existing_run_needs_resume_or_force(finished_run) -> None:
    cfg, _, _ = finished_run
    with pytest.raises(RunDirError, match=r"(?s)already holds a run.*--resume"):
        edgekd.compress(cfg, ["host"], quiet=True)


def test_resume_skips_finished_stages(finished_run, tmp_path: Path) -> None:
    cfg, _, run = finished_run
    import shutil

    shutil.copytree(run, tmp_path / "tiny")
    cfg = {**cfg, "output_dir": str(tmp_path)}
    t0 = time.perf_counter()
    report = edgekd.compress(cfg, ["host"], resume=True, quiet=True)
    assert time.perf_counter() - t0 < 20
    assert all(s["resumed"] for s in report.stages.values())
    # as if the teacher had been trained on another machine's accelerator
    manifest = tmp_path / "tiny" / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["stages"]["teacher"]["device"] = "xpu:7"
    manifest.write_text(json.dumps(doc))
    # changing the distill settings re-runs distill and everything after it, not the teacher, and says why
    cfg["distill"] = {**cfg["distill"], "epochs": 1}
    lines = io.StringIO()
    report = edgekd.compress(cfg, ["host"], resume=True, reporter=Reporter(console=Console(file=lines, width=500)))
    assert report.stages["teacher"]["resumed"] and not report.stages["distill"]["resumed"]
    assert not report.stages["export"]["resumed"]
    why = [ln for ln in lines.getvalue().splitlines() if "re-running" in ln]
    assert why == ["distill: settings changed (distill.epochs 2 → 1), re-running distill and the stages after it"]
    # the report says where each training stage ran, not only where this invocation runs
    here = report.stages["distill"]["device"]
    assert report.stages["teacher"]["device"] == "xpu:7" and here in ("cpu", "cuda", "cuda:0", "mps")
    assert report.environment["training_device"] == f"xpu:7 (teacher); {here} (distill)"


def test_failure_keeps_finished_stages_and_resume_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekd.stages import bench

    cfg = tiny_config(tmp_path)
    original = bench.BenchStage.run

    def broken(self, ctx, out):
        raise ExportError("simulated failure in bench")

    monkeypatch.setattr(bench.BenchStage, "run", broken)
    with pytest.raises(ExportError, match="simulated"):
        edgekd.compress(cfg, ["host"], quiet=True)
    manifest = json.loads((tmp_path / "tiny" / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["teacher", "distill", "export"]
    monkeypatch.setattr(bench.BenchStage, "run", original)
    report = edgekd.compress(cfg, ["host"], resume=True, quiet=True)
    assert report.stages["distill"]["resumed"] and not report.stages["bench"]["resumed"]
    assert (tmp_path / "tiny" / "report" / "report.json").exists()


def test_killed_mid_stage_then_resumed(tmp_path: Path) -> None:
    """SIGKILL during distill: the teacher stays done, the half stage is redone on --resume."""
    cfg = tiny_config(tmp_path)
    cfg["distill"]["epochs"] = 30  # long enough to be killed mid-way
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edgekd", "compress", str(path), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "tiny" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if manifest.exists() and "teacher" in json.loads(manifest.read_text())["stages"]:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stages = json.loads(manifest.read_text())["stages"]
    assert list(stages) == ["teacher"]  # distill was cut off and is not recorded
    cfg["distill"]["epochs"] = 1
    path.write_text(yaml.safe_dump(cfg))
    report = edgekd.compress(path, ["host"], resume=True, quiet=True)
    assert report.stages["teacher"]["resumed"] and not report.stages["distill"]["resumed"]
    assert report.model("student").accuracy > 0


def test_resume_removes_what_a_killed_manifest_write_left(tmp_path: Path) -> None:
    from edgekd.core.rundir import RunDir

    run = RunDir(tmp_path / "r").open(resume=False, force=False)
    run.save()
    run.close()  # releases the run folder's lock, as a killed process's exit does
    stale = tmp_path / "r" / ".manifest.json.k2j3.tmp"
    stale.write_text('{"stages": {"half')  # SIGKILL between write and rename
    RunDir(tmp_path / "r").open(resume=True, force=False).close()
    assert not stale.exists() and (tmp_path / "r" / "manifest.json").exists()


def test_same_config_same_weights(tmp_path: Path) -> None:
    """A seed reproduces a run: the teacher's and the student's weights are identical even when
    the process's random state differs beforehand (as between two CLI invocations)."""
    import torch

    from edgekd.core.rundir import sha256_file

    digests = []
    for i, noise in enumerate((1, 2)):
        torch.manual_seed(noise)
        torch.rand(noise * 7)  # leave the global generator somewhere else each time
        cfg = tiny_config(tmp_path / str(i), stages=["distill"], distill={"epochs": 1, "batch_size": 64})
        cfg["teacher"]["train"]["epochs"] = 1
        edgekd.compress(cfg, ["host"], quiet=True)
        run = tmp_path / str(i) / "tiny"
        digests.append([sha256_file(run / s / "model" / "weights.safetensors") for s in ("teacher", "distill")])
    assert digests[0] == digests[1]


def test_rerun_reasons(tmp_path: Path) -> None:
    """What --resume says for each way a recorded stage goes stale."""
    (tmp_path / "distill").mkdir()
    (tmp_path / "distill" / "w.bin").write_bytes(b"new")
    rec = {"input_hash": "h1", "settings": {"distill": {"epochs": 1, "loss": [{"name": "kl"}]}, "seed": 0},
           "upstream": {"teacher": {"model:teacher": "t1"}},
           "artifacts": {"model:student": {"path": "distill/w.bin", "sha256": "old"}}}
    new = {"distill": {"epochs": 2, "loss": [{"name": "dist"}]}, "seed": 0}
    assert rerun_reason(rec, "h2", new, rec["upstream"], tmp_path, set()) == (
        'settings changed (distill.epochs 1 → 2, distill.loss.0.name "kl" → "dist")')
    moved = {"teacher": {"model:teacher": "t2"}}
    assert rerun_reason(rec, "h2", rec["settings"], moved, tmp_path, set()) == (
        "an earlier stage's output changed (teacher)")
    assert rerun_reason(rec, "h2", rec["settings"], moved, tmp_path, {"teacher"}) is None  # teacher said it already
    assert rerun_reason(rec, "h1", rec["settings"], rec["upstream"], tmp_path, set()) == (
        "its files changed on disk (distill/w.bin)")
    legacy = {k: v for k, v in rec.items() if k not in ("settings", "upstream")}
    assert rerun_reason(legacy, "h2", new, {}, tmp_path, set()) == "settings or an earlier stage's output changed"
    many = settings_diff({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, {"a": 2, "b": 2, "c": 2, "d": 2, "f": 1})
    assert many == "a 1 → 2, b 1 → 2, c 1 → 2 +3 more"
    assert settings_diff({"x": {"y": None}}, {"x": {}}) == "x.y null → unset, x unset → {}"
    assert settings_diff({"x": [1]}, {"x": [1]}) == ""
