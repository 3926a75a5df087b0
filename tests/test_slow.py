"""End-to-end runs of the shipped example, as a new user runs it (``pytest -m slow``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_digits_demo_from_the_command_line(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "edgekd", "compress", "examples/digits.yaml", "--target", "host",
           "--output-dir", str(tmp_path), "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "digits" / "report" / "report.json").read_text())
    assert list(rep["stages"]) == ["teacher", "search", "distill", "prune", "quantize", "export", "bench", "report"]
    acc = {m["label"]: m["accuracy"] for m in rep["models"]}
    assert acc["teacher"] >= 97.0
    assert acc["student"] >= acc["teacher"] - 1.5  # distilled student within 1.5 points of the teacher
    assert rep["search"]["chosen"]["params"] <= 0.7e6  # the search respected its budget
    macs = {m["label"]: m["macs"] for m in rep["models"]}
    assert macs["student"] / macs["pruned"] >= 1.9
    for e in rep["exports"]:
        assert e["status"] == "ok" and e["parity"]["passed"]
    st = rep["speedups"]["student"]
    assert st["speedup_vs_teacher_eager"] >= 5.0  # ONNX Runtime student vs PyTorch eager teacher, side by side
    assert rep["choices"]["host"]["student"]["kind"] == "measured"
