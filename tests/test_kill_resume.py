"""SIGKILL in the middle of every stage, then ``--resume``: nothing half-written is trusted.

Each case runs ``python -m edgekd compress CONFIG --target host`` as a real process on a tiny
config with every stage, polls the run folder until the stage under test has started (its
folder exists and the manifest does not list it yet), kills the process with SIGKILL, then
runs ``--resume`` to the end. What must hold: exit 0; every stage recorded before the kill is
reported as skipped and its artifact hashes are unchanged; the killed stage ran again and is
recorded; no temporary file (``.*.tmp``) is left in the run folder or recorded as an artifact;
the report exists. The training stages get a few epochs so that they last long enough to be
caught; the folder is polled every few milliseconds for the quick ones. The teacher and export
write files long before they end, so those two are killed only once a file is there: the
resumed run meets a half-written stage folder. Each case is a full run plus a resumed one
(25-50 s on 2 busy cores): marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config

pytestmark = pytest.mark.slow

STAGES = ["teacher", "search", "distill", "prune", "quantize", "export", "bench"]
# Stages that write files well before they end (the teacher's best epoch so far, export's files one
# by one): killed only once something is written, so the resumed run meets a half-written folder.
PARTLY_WRITTEN = {"teacher", "export"}


def _config(tmp_path: Path) -> Path:
    cfg = tiny_config(tmp_path, stages=[*STAGES[1:], "report"])
    cfg.pop("student")  # the search chooses it
    cfg["threads"] = 1  # 2 torch threads on 2 busy shared cores ran this run 8x slower (3:46 against 0:27)
    cfg["teacher"]["train"]["epochs"] = 3
    cfg["search"] = {"space": {"name": "resnet", "depths": [1], "widths": [8, 12, 16]}, "batch_size": 64,
                     "constraints": {"speedup": None}}  # a tiny teacher is not 4x slower than these
    cfg["distill"] = {"epochs": 2, "batch_size": 64}
    cfg["prune"] = {"flops_ratio": 1.5, "steps": 1, "finetune": {"epochs": 2}}
    cfg["quantize"] = {"train": {"epochs": 1}, "calibration_size": 64}
    cfg["bench"] = {"runtimes": ["onnxruntime"], "repeats": 3, "rounds": 1, "warmup": 1}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _stages(run: Path) -> dict:
    try:
        return json.loads((run / "manifest.json").read_text())["stages"]
    except FileNotFoundError:
        return {}


def _started(run: Path, stage: str) -> bool:
    """The stage's folder exists (for those in ``PARTLY_WRITTEN``: holds a file) and it is not recorded."""
    folder = run / stage
    begun = folder.is_dir() and (stage not in PARTLY_WRITTEN or any(folder.rglob("*")))
    return begun and stage not in _stages(run)


def _kill_during(stage: str, config: Path, run: Path) -> dict:
    """Start a run, SIGKILL it once ``stage`` has started; return the manifest's stages at that moment."""
    cmd = [sys.executable, "-m", "edgekd", "compress", str(config), "--target", "host", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _started(run, stage):
                proc.kill()  # SIGKILL: no cleanup handler runs
                break
            time.sleep(0.003)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == -9, f"the run ended before {stage} could be killed (rc {proc.returncode}): {err[-2000:]}"
    return _stages(run)


def _temporary_files(run: Path, stages: dict) -> list[str]:
    left = [str(p.relative_to(run)) for p in run.rglob(".*.tmp")]
    recorded = [a["path"] for s in stages.values() for a in s["artifacts"].values()]
    return left + [p for p in recorded if Path(p).name.startswith(".") and p.endswith(".tmp")]


@pytest.mark.parametrize("stage", STAGES)
def test_killed_in_a_stage_then_resumed(stage: str, tmp_path: Path) -> None:
    config, run = _config(tmp_path), tmp_path / "tiny"
    before = _kill_during(stage, config, run)
    earlier = STAGES[: STAGES.index(stage)]
    assert list(before) == earlier, f"killed in {stage}, but the manifest holds {list(before)}"
    if stage in PARTLY_WRITTEN:
        assert any((run / stage).rglob("*"))
    killed_at = time.time()
    proc = subprocess.run([sys.executable, "-m", "edgekd", "compress", str(config), "--target", "host", "--resume"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, said[-3000:]
    after = _stages(run)
    assert list(after) == [*STAGES, "report"]
    for s in earlier:
        assert f"{s}: done earlier with the same inputs, skipped (--resume)" in said
        assert after[s]["artifacts"] == before[s]["artifacts"]  # same paths, same hashes
    assert f"{stage}: done earlier" not in said
    finished = datetime.strptime(after[stage]["finished"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    assert finished >= int(killed_at)  # ran again after the kill
    assert _temporary_files(run, after) == []
    assert json.loads((run / "report" / "report.json").read_text())["schema_version"]
