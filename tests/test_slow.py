"""End-to-end runs of the shipped example, as a new user runs it (``pytest -m slow``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_digits_demo_from_the_command_line(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "edgekd", "compress", "examples/digits.yaml", "--target", "host",
           "--output-dir", str(tmp_path), "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "digits" / "report" / "report.json").read_text())
    # report.json is written by the report stage, so it lists the stages finished before it
    assert list(rep["stages"]) == ["teacher", "search", "distill", "prune", "quantize", "export", "bench"]
    assert (tmp_path / "digits" / "report" / "report.html").exists()
    acc = {m["label"]: m["accuracy"] for m in rep["models"]}
    assert acc["teacher"] >= 97.0
    assert acc["student"] >= acc["teacher"] - 1.5  # distilled student within 1.5 points of the teacher
    chosen, budget = rep["search"]["chosen"], rep["search"]["budgets"]["latency_ms"]["host"]
    assert chosen["latency"]["host"]["ms"] <= budget  # the search respected the relative budget (teacher / 4)
    assert chosen["params"] < 0.25 * rep["search"]["teacher_point"]["params"]
    macs = {m["label"]: m["macs"] for m in rep["models"]}
    assert macs["student"] / macs["pruned"] >= 1.9
    from edgekd.engines.quantization.overflow import host_has_vnni

    for e in rep["exports"]:
        if (e["model"], e["format"], e["status"]) == ("quantized", "openvino", "failed") and host_has_vnni() is False:
            # Known on x86 without VNNI: OpenVINO's INT8 results vary run to run (tests/test_quantize.py);
            # optional on host, so the run goes on and the failure is recorded with its numbers.
            assert "disagrees with PyTorch" in e["note"]
            continue
        assert e["status"] == "ok" and e["parity"]["passed"]
    st = rep["speedups"]["student"]
    if not torch.cuda.is_available():  # CPU-only hosts like CI's; a GPU host's fastest is a CUDA graph (RESULTS.md)
        assert st["speedup_vs_teacher_eager"] >= 5.0  # ONNX Runtime student vs PyTorch eager teacher, side by side
    else:
        assert any(r["device"] == "cuda" and r["kind"] == "measured" for r in rep["latency"])
    assert rep["choices"]["host"]["student"]["kind"] == "measured"


@pytest.mark.slow
def test_imagefolder224_example_end_to_end_on_a_generated_folder(tmp_path: Path) -> None:
    """The real-resolution example as shipped (224 px, crop, ImageNet statistics, streamed), on a
    small generated folder of mixed-size JPEGs so it fits CI: every stage runs, every file validates."""
    subprocess.run([sys.executable, "examples/make_image_folder.py", str(tmp_path / "f"), "--train", "120",
                    "--val", "40", "--size", "240", "--render-size", "48", "--workers", "1"], cwd=ROOT, check=True)
    sets = [f"data.path={tmp_path / 'f' / 'train'}", f"data.val_path={tmp_path / 'f' / 'val'}",
            f"teacher.checkpoint={tmp_path / 'teacher.safetensors'}", "teacher.model=resnet10t",
            "teacher.train.epochs=1", "distill.epochs=1", "quantize.calibration_size=32", "bench.repeats=3"]
    cmd = [sys.executable, "-m", "edgekd", "compress", "examples/imagefolder224.yaml", "--target", "host",
           "--output-dir", str(tmp_path / "runs"), "--quiet", *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "runs" / "shapes224" / "report" / "report.json").read_text())
    assert rep["data"]["streamed"] and rep["data"]["image_size"] == 224
    assert rep["data"]["preprocess"]["resize"] == "crop" and rep["data"]["preprocess"]["mean"][0] == 0.485
    assert {m["label"] for m in rep["models"]} == {"teacher", "student", "pruned", "quantized"}
    meta = json.loads((tmp_path / "runs" / "shapes224" / "export" / "student.json").read_text())
    assert meta["input_shape"] == ["batch", 3, 224, 224] and meta["preprocessing"]["crop_fraction"] == 0.875
