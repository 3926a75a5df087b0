"""Training under torchrun with DistributedDataParallel: 2 CPU processes, gloo, tiny models.

The end-to-end models here have no BatchNorm, so DDP's averaged gradients over the two
half-batches equal one process's full-batch gradients and the accuracies must agree closely.
BatchNorm is synchronised over the ranks (tests/test_sync_bn.py checks it numerically); the
float64 test trains a BatchNorm ResNet with the teacher's recipe on 1 and 2 processes and
compares the weights; benchmarks/ddp.py runs BatchNorm models end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import free_port

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


# augmentation off here: the float64 test below checks that the ranks draw the global batch's shifts
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
    assert report["stages"]["distill"]["world"] == {"world_size": 2, "backend": "gloo", "batchnorm": "none in model"}
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



def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc: Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds torchrun's ranks through /proc")
def test_a_killed_ddp_run_resumes(tmp_path: Path) -> None:
    """SIGKILL to torchrun and both ranks while distill trains (a lost node, the OOM killer): the
    teacher recorded before stays as it was, nothing half-written is trusted, ``--resume``
    under torchrun takes over the dead run's lock and finishes."""
    import contextlib
    import signal
    import time

    cfg = _config(tmp_path, "runs", ["distill", "report"])
    run = tmp_path / "runs" / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "ddp_entry.py"), "compress", str(cfg), "--target", "host", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    stages: dict = {}
    deadline = time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                stages = json.loads((run / "manifest.json").read_text())["stages"]
            except (FileNotFoundError, json.JSONDecodeError):
                stages = {}
            if "teacher" in stages and "distill" not in stages and (run / "distill").is_dir():
                break
            time.sleep(0.005)
    finally:
        # the ranks (torchrun starts them in sessions of their own, out of its process group), then
        # torchrun itself: SIGKILL, so no handler runs
        for pid in [*_descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate()
    assert proc.returncode == -9, f"the run ended before distill could be killed: {err[-2000:]}"
    assert list(stages) == ["teacher"] and (run / ".lock").exists()
    r = _torchrun(tmp_path, cfg, "--resume")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.returncode == 0, said[-3000:]
    assert "took over the lock of an edgekd run that is gone" in said
    assert "teacher: done earlier with the same inputs, skipped" in said
    after = json.loads((run / "manifest.json").read_text())["stages"]
    assert {"teacher", "distill", "report"} <= set(after)
    assert after["teacher"]["artifacts"] == stages["teacher"]["artifacts"]  # same paths, same hashes
    assert not list(run.rglob(".*.tmp"))


def _qat_worker(rank: int, world: int, port: int, out: str) -> None:
    """Each rank calibrates NNCF on *different* images, then QAT under DDP: training must start
    from rank 0's quantizer scales (DDP's initial broadcast) and keep the ranks identical."""
    import torch
    import torch.distributed as tdist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    tdist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    from edgekd.core.config import DataConfig, LossTerm, TrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.models.build import build_model
    from edgekd.engines.quantization.recipe import QuantRecipe, apply_recipe
    from edgekd.engines.train.trainer import train

    data = load_data(DataConfig(source="digits", image_size=16))
    torch.manual_seed(0)
    model = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]})
    calib = [data.normalize(data.train_x[rank * 128 : rank * 128 + 128])]  # a different batch per rank
    q, _ = apply_recipe(model, calib, QuantRecipe("mixed"), quiet=True)
    scales = lambda m: {k: v.clone() for k, v in m.state_dict().items() if "scale" in k or "input_low" in k}  # noqa: E731
    before = scales(q)
    train(q, data, TrainConfig(epochs=1, batch_size=64, max_steps_per_epoch=2, loss=[LossTerm(name="ce")],
                               optimizer={"lr": 1e-9, "weight_decay": 0.0}))  # barely moves: what it starts from
    after = scales(q)
    torch.save({"before": before, "after": after}, f"{out}.{rank}")
    tdist.destroy_process_group()


@pytest.mark.slow
def test_qat_under_ddp_starts_from_rank0_quantizers(tmp_path: Path) -> None:
    import torch
    import torch.multiprocessing as mp

    port = free_port()
    mp.spawn(_qat_worker, args=(2, port, str(tmp_path / "q")), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "q.0"), torch.load(tmp_path / "q.1")
    assert r0["before"].keys() == r1["before"].keys() and r0["before"]
    assert any(not torch.equal(r0["before"][k], r1["before"][k]) for k in r0["before"])  # calibrated apart
    for k in r0["after"]:
        assert torch.equal(r0["after"][k], r1["after"][k]), k  # the ranks stay identical
        assert torch.allclose(r1["after"][k], r0["before"][k], atol=1e-6), k  # rank 1 trained from rank 0's
        gap = (r1["before"][k] - r0["before"][k]).abs().max()
        assert gap == 0 or (r1["after"][k] - r1["before"][k]).abs().max() > 1e-4, k  # ... not from its own


def _float64_worker(rank: int, world: int, port: int, out: str) -> None:
    """The trainer itself (teacher recipe: SGD, warm-up then cosine, shifts and flips, grad
    clipping, BatchNorm; then KD to a student) in float64, on ``world`` processes; rank 0 saves
    the weights."""
    import torch
    import torch.distributed as tdist

    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
        tdist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    from edgekd.core.config import DataConfig, TeacherTrainConfig, TrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.models.build import build_model
    from edgekd.engines.train.trainer import train

    data = load_data(DataConfig(source="digits", image_size=16))
    torch.manual_seed(0)
    model = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}).double()
    cfg = TeacherTrainConfig(epochs=3, batch_size=64, max_steps_per_epoch=4, grad_clip=1.0,
                             optimizer={"lr": 0.2}, schedule={"warmup_epochs": 1},
                             augment={"shift": 2, "hflip": True})
    result = train(model, data, cfg, seed=3)
    # then distil a student from it: the KD loss on the teacher's logits cached once, taken per rank by index
    student = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 8, 16, 16]}).double()
    kd = TrainConfig(epochs=3, batch_size=64, max_steps_per_epoch=4, augment={"shift": 0}, optimizer={"lr": 0.1})
    train(student, data, kd, teacher=model, seed=4)
    if rank == 0:
        torch.save({"state": model.state_dict(), "history": result.history, "student": student.state_dict()}, out)
    if world > 1:
        tdist.destroy_process_group()


def test_two_processes_train_the_same_weights_as_one_in_float64(tmp_path: Path) -> None:
    """In float64 rounding cannot hide a difference in what is computed: sharding, the
    global-batch augmentation draws, synchronised BatchNorm, DDP's gradient average, clipping,
    the per-step learning rate and the KD loss on cached teacher logits must give one
    process's weights. (In float32 the two runs part after a few steps from rounding alone,
    as a change of thread count does; see benchmarks/RESULTS.md, "More than one process
    (torchrun)".)"""
    import torch
    import torch.multiprocessing as mp

    mp.spawn(_float64_worker, args=(1, 0, str(tmp_path / "one")), nprocs=1, join=True)
    mp.spawn(_float64_worker, args=(2, free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    one, two = torch.load(tmp_path / "one"), torch.load(tmp_path / "two")
    assert [h["lr"] for h in one["history"]] == [h["lr"] for h in two["history"]]
    moved = 0
    for model in ("state", "student"):
        for k, v in one[model].items():
            assert v.dtype in (torch.float64, torch.int64), k
            torch.testing.assert_close(two[model][k], v, rtol=1e-9, atol=1e-10, msg=f"{model} {k}")
            moved += k.endswith("running_var") and not torch.allclose(v, torch.ones_like(v))
    assert moved  # BatchNorm trained: its statistics are part of what matched
    assert one["history"][-1]["train_loss"] < one["history"][0]["train_loss"]  # and the weights moved
