"""Training under torchrun with DistributedDataParallel: 2 CPU processes, gloo, tiny models.

The models here have no BatchNorm, so DDP's averaged gradients over the two half-batches
equal one process's full-batch gradients and the accuracies must agree closely (with
BatchNorm each rank normalises its half-batch: close, not equal; benchmarks/ddp.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NETS = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def net(num_classes, width=16):
    return Net(num_classes, width)
'''


# no augmentation: its random draws are per image, so a half-batch would draw different ones
TRAIN = {"batch_size": 64, "optimizer": {"name": "adamw", "lr": 0.005}, "augment": {"shift": 0}}


def _config(tmp: Path, out: str, stages: list[str]) -> Path:
    (tmp / "ddpnets.py").write_text(NETS)
    cfg = {"name": "ddp", "output_dir": str(tmp / out), "seed": 0, "threads": 1,
           "data": {"source": "digits", "image_size": 16},
           "teacher": {"model": "ddpnets:net", "kwargs": {"width": 24}, "train": {**TRAIN, "epochs": 5}},
           "student": {"model": "ddpnets:net", "kwargs": {"width": 8}},
           "stages": stages, "distill": {**TRAIN, "epochs": 4},
           "quantize": {"train": {**TRAIN, "epochs": 1, "optimizer": {"name": "adamw", "lr": 0.0005}}},
           "bench": {"repeats": 3, "rounds": 1, "warmup": 1}}
    path = tmp / f"{out}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(tmp), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def _torchrun(tmp: Path, cfg: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "ddp_entry.py"), "compress", str(cfg), "--target", "host", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env or _env(tmp), timeout=900)


def _accuracies(run: Path) -> dict[str, float]:
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    return {s: r["metrics"]["accuracy"] for s, r in stages.items() if "accuracy" in r["metrics"]}


@pytest.mark.slow
def test_two_processes_match_one_and_only_rank0_writes(tmp_path: Path) -> None:
    stages = ["distill", "quantize", "export", "report"]
    one = subprocess.run([sys.executable, "-m", "edgekd", "compress", str(_config(tmp_path, "one", stages)),
                          "--target", "host", "--quiet"], capture_output=True, text=True, cwd=tmp_path,
                         env=_env(tmp_path), timeout=900)
    assert one.returncode == 0, one.stdout + one.stderr
    cfg = _config(tmp_path, "two", stages)
    audit = tmp_path / "audit"
    r = _torchrun(tmp_path, cfg, env=_env(tmp_path, EDGEKD_TEST_AUDIT=str(tmp_path / "two"),
                                          EDGEKD_TEST_AUDIT_OUT=str(audit)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    a1, a2 = _accuracies(tmp_path / "one" / "ddp"), _accuracies(tmp_path / "two" / "ddp")
    assert a1.keys() == a2.keys() == {"teacher", "distill", "quantize"}
    for stage in a1:
        assert abs(a1[stage] - a2[stage]) <= 1.0, (stage, a1, a2)
    assert json.loads((audit.parent / "audit.rank1").read_text()) == []  # rank 1 wrote nothing there
    files = sorted(str(p.relative_to(tmp_path / "one" / "ddp")) for p in (tmp_path / "one" / "ddp").rglob("*"))
    files2 = sorted(str(p.relative_to(tmp_path / "two" / "ddp")) for p in (tmp_path / "two" / "ddp").rglob("*"))
    assert files == files2
    report = json.loads((tmp_path / "two" / "ddp" / "report" / "report.json").read_text())
    assert report["stages"]["distill"]["world"] == {"world_size": 2, "backend": "gloo"}
    assert report["environment"]["distributed"]["world_size"] == 2


@pytest.mark.slow
def test_a_failing_rank_fails_the_run_and_resume_continues(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "runs", ["distill", "report"])
    r = _torchrun(tmp_path, cfg, env=_env(tmp_path, EDGEKD_TEST_FAIL_RANK="1"))
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "rank 1 of 2: injected failure on rank 1" in " ".join(out.split())
    manifest = json.loads((tmp_path / "runs" / "ddp" / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["teacher"]  # finished before the failure: kept
    r = _torchrun(tmp_path, cfg, "--resume")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "teacher: done earlier with the same inputs, skipped" in r.stdout + r.stderr
    assert {"teacher", "distill", "report"} <= set(json.loads((tmp_path / "runs" / "ddp" / "manifest.json")
                                                               .read_text())["stages"])
