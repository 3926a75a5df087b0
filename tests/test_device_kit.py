"""The device kit runs with only a runtime (no torch, no edgekd); its JSON merges into a report;
TensorRT engines are deferred to the device with exact commands and TensorRT-valid Q/DQ."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgekd
from edgekd.core.devicekit import kit_path, load_kit
from edgekd.engines.exporters.tensorrt_rules import check_qdq

# torch and edgekd made unimportable, as on a device that only has a runtime
NO_TORCH = ("import sys, runpy; sys.modules['torch'] = None; sys.modules['edgekd'] = None; "
            "sys.argv = ['edgekd_kit.py'] + sys.argv[1:]; runpy.run_path({kit!r}, run_name='__main__')")


def _kit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = NO_TORCH.format(kit=str(cwd / "edgekd_kit.py"))
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def kit_results(finished_run, tmp_path_factory):
    """The finished run's export folder benchmarked by the kit, as on a device."""
    _, _, run = finished_run
    device = tmp_path_factory.mktemp("device")
    shutil.copytree(run / "export", device / "export")
    folder = device / "export"
    assert (folder / "edgekd_kit.py").exists() and (folder / "validation.npz").exists()
    r = _kit("bench-dir", ".", "--target", "raspberry-pi-5", "--repeats", "5", "--rounds", "1", "--warmup", "2",
             "--out", "results.json", cwd=folder)
    assert r.returncode == 0, r.stderr
    return json.loads((folder / "results.json").read_text()), folder / "results.json"


def test_kit_runs_without_torch_on_onnxruntime_and_openvino(kit_results, finished_run) -> None:
    doc, _ = kit_results
    _, report, _ = finished_run
    assert doc["schema"] == "edgekd-kit-results/2" and doc["target"] == "raspberry-pi-5"
    seen = {(r["model"], r["runtime"], r["precision"]) for r in doc["results"]}
    assert {("teacher", "onnxruntime", "fp32"), ("student", "onnxruntime", "fp32"),
            ("teacher", "openvino", "fp32"), ("student", "openvino", "fp32")} <= seen
    for r in doc["results"]:
        assert r["kind"] == "measured" and r["median_ms"] > 0 and r["batch_size"] == 1
        v = r["validation"]  # accuracy on the shipped validation images, checked on the "device"
        assert v["top1_agreement"] == 1.0
        assert v["accuracy"] == pytest.approx(v["torch_accuracy"])


def test_kit_json_merges_into_the_report(kit_results, finished_run, tmp_path: Path) -> None:
    _, results = kit_results
    _, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    report = edgekd.api.report(tmp_path / "tiny", imports=[results], quiet=True)
    pi = [r for r in report.latency if r["target"] == "raspberry-pi-5"]
    assert pi and all(r["kind"] == "measured" and r["source"].startswith("device kit") for r in pi)
    assert any(t["name"] == "raspberry-pi-5" and t.get("imported") for t in report.targets)
    assert report.choices["raspberry-pi-5"]["student"]["kind"] == "measured"
    assert "raspberry-pi-5" in (tmp_path / "tiny" / "report" / "report.md").read_text()
    host = [r for r in report.latency if r["target"] == "host"]
    assert host == [r for r in finished_run[1].latency if r["target"] == "host"]  # host numbers untouched


def test_kit_results_calibrate_the_device_profile(kit_results, tmp_path: Path) -> None:
    """`edgekd profiles calibrate raspberry-pi-5 --from results.json --exports ...`: the fitted
    profile is saved, loads as a target, and predicts the measurements better than the prior."""
    from edgekd.core.profiles import resolve_target

    doc, results = kit_results
    res = edgekd.api.calibrate_profile("raspberry-pi-5", results=[results], exports=results.parent,
                                       out=tmp_path / "pi.yaml", quiet=True)
    fitted = resolve_target(str(tmp_path / "pi.yaml"))[0]
    assert fitted.name == "raspberry-pi-5" and "device-kit measurements" in fitted.calibration.fitted_on
    assert len(res["samples"]) == len(doc["results"])
    assert res["after"]["median_abs_error"] < res["before"]["median_abs_error"]
    assert fitted.cache_mb == 2  # the profile's own facts are kept, only the factors are fitted


def test_import_rejects_other_json(finished_run, tmp_path: Path) -> None:
    _, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    bad = tmp_path / "x.json"
    bad.write_text('{"results": []}')
    with pytest.raises(edgekd.ConfigError, match="not device-kit output"):
        edgekd.api.report(tmp_path / "tiny", imports=[bad], quiet=True)


def test_kit_results_of_another_schema_say_so(tmp_path: Path) -> None:
    """A results file from another kit version is named as such, not as foreign JSON, by both readers."""
    from typer.testing import CliRunner

    from edgekd import cli
    from edgekd.core.devicekit import KIT_SCHEMA

    assert load_kit().SCHEMA == KIT_SCHEMA  # edgekd reads what the kit it ships writes
    run = tmp_path / "tiny"
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    (run / "manifest.json").write_text('{"stages": {}}\n')
    newer = tmp_path / "results.json"
    newer.write_text(json.dumps({"schema": "edgekd-kit-results/3", "target": "raspberry-pi-5", "results": []}))
    runner = CliRunner()
    r = runner.invoke(cli.app, ["report", str(run), "--import", str(newer)])
    assert r.exit_code == 2, r.output
    flat = " ".join(r.output.split())
    assert "was written by device kit schema 3; this edgekd reads schema 2" in flat
    assert "not device-kit output" not in flat and "export folder" in flat
    assert not (run / "imports").exists() or not any((run / "imports").iterdir())
    r = runner.invoke(cli.app, ["profiles", "calibrate", "raspberry-pi-5", "--from", str(newer), "--exports", str(run)])
    assert r.exit_code == 10, r.output
    assert "was written by device kit schema 3; this edgekd reads schema 2" in " ".join(r.output.split())
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    r = runner.invoke(cli.app, ["profiles", "calibrate", "raspberry-pi-5", "--from", str(garbled), "--exports", str(run)])
    assert r.exit_code == 10 and "cannot read device-kit results" in " ".join(r.output.split())


def test_trtexec_commands_follow_the_tensorrt_version() -> None:
    kit = load_kit()
    new = kit.trtexec_command("q.onnx", "q.engine", "int8", (1, 3, 32, 32), 8, 10)
    assert new[:3] == ["trtexec", "--onnx=q.onnx", "--saveEngine=q.engine"]
    assert "--stronglyTyped" in new and "--int8" not in new
    assert "--minShapes=input:1x3x32x32" in new and "--maxShapes=input:8x3x32x32" in new
    old = kit.trtexec_command("q.onnx", "q.engine", "int8", (1, 3, 32, 32), 8, 8)
    assert "--int8" in old and "--fp16" in old and "--stronglyTyped" not in old
    assert "--fp16" in kit.trtexec_command("s.onnx", "s.engine", "fp16", (1, 3, 32, 32), 8, 10)
    assert kit_path().name == "edgekd_kit.py"


def test_tensorrt_targets_get_deferred_engines_and_valid_qdq(finished_run, tmp_path: Path) -> None:
    cfg, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    cfg = {**cfg, "output_dir": str(tmp_path), "stages": ["distill", "quantize", "export", "bench", "report"],
           "quantize": {"method": "ptq", "calibration_size": 64}}
    report = edgekd.compress(cfg, ["jetson-orin-nano", "jetson-nano"], resume=True, quiet=True)
    engines = [e for e in report.exports if e["format"] == "tensorrt"]
    assert engines and all(e["status"] == "deferred" for e in engines)
    by = {(e["model"], e["precision"], e["target"]): e for e in engines}
    assert ("quantized", "int8", "jetson-orin-nano") in by
    assert not any(k[2] == "jetson-nano" and k[1] == "int8" for k in by)  # the Nano has no INT8
    q = by[("quantized", "int8", "jetson-orin-nano")]
    assert "--stronglyTyped" in q["trtexec"] and "build-engine quantized.onnx --precision int8" in q["command"]
    assert "--fp16" in by[("student", "fp16", "jetson-nano")]["trtexec"]
    assert check_qdq(tmp_path / "tiny" / "export" / "quantized.onnx") == []  # TensorRT's explicit-quantization rules
    import onnx

    assert onnx.load(str(tmp_path / "tiny" / "export" / "student.onnx")).opset_import[0].version == 13  # Nano's cap
    assert all(r["kind"] == "predicted" for r in report.latency)
    assert report.choices["jetson-orin-nano"]["quantized"]["precision"] == "int8"


def test_kit_results_of_schema_1_are_read_with_the_runtime_key(tmp_path: Path) -> None:
    """Kits already on devices write schema 1, whose rows say "backend": read as "runtime"."""
    from edgekd.core.devicekit import read_kit_results

    old = tmp_path / "results.json"
    old.write_text(json.dumps({"schema": "edgekd-kit-results/1", "target": "raspberry-pi-5", "results": [
        {"model": "student", "backend": "onnxruntime", "backend_version": "1.20", "format": "onnx"}]}))
    row = read_kit_results(old)["results"][0]
    assert row["runtime"] == "onnxruntime" and row["runtime_version"] == "1.20" and "backend" not in row
