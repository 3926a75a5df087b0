"""BatchNorm over the global batch under DDP: 2 gloo processes with half a batch each compute
what one process computes on the whole batch (outputs, weight gradients, running statistics)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import free_port
from torch import nn


def _net() -> nn.Module:
    """Plain BatchNorm2d, timm's BatchNormAct2d (calls F.batch_norm itself, then its activation),
    a cumulative-average BatchNorm (momentum=None) and a BatchNorm1d."""
    from timm.layers import BatchNormAct2d

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), BatchNormAct2d(8, act_layer=nn.SiLU),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8, momentum=None),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6))


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(16, 3, 8, 8, generator=g) * 2 + 0.5 for _ in range(2)]


def _steps(model: nn.Module, batches: list[torch.Tensor], part: slice, mode=None) -> dict:  # noqa: ANN001
    """Two training steps (forward, backward; gradients kept per step) and an eval forward."""
    import contextlib

    out: dict = {"outputs": [], "grads": []}
    for x in batches:
        model.zero_grad()
        with mode or contextlib.nullcontext():
            y = model(x[part])
        (y.square().mean() + y[:, 0].mean()).backward()
        out["outputs"].append(y.detach())
        inner = model.module if hasattr(model, "module") else model
        out["grads"].append({k: p.grad.clone() for k, p in inner.named_parameters()})
    inner = model.module if hasattr(model, "module") else model
    out["state"] = {k: v.clone() for k, v in inner.state_dict().items()}
    inner.eval()
    with mode or contextlib.nullcontext():  # eval mode: running statistics, nothing synchronised
        out["eval"] = model(batches[0][part]).detach()
    return out


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel

    from edgekd.engines.train.sync_bn import SyncedBatchNorm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    mode = SyncedBatchNorm()
    model = DistributedDataParallel(_net())
    res = _steps(model, _batches(), slice(rank, None, world), mode)  # this rank's part, as the trainer shards
    res["kinds"] = sorted(mode.kinds)
    torch.save(res, f"{out}.{rank}")
    tdist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_compute_the_full_batch_batchnorm(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    port = free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path / "r")), nprocs=2, join=True)
    ref = _steps(_net(), _batches(), slice(None))
    plain = _net()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"r.{rank}")
        assert got["kinds"] == ["synchronised (all-reduce, CPU)"]
        for step in (0, 1):
            torch.testing.assert_close(got["outputs"][step], ref["outputs"][step][rank::2], atol=1e-5, rtol=1e-5)
            for k, g in ref["grads"][step].items():
                torch.testing.assert_close(got["grads"][step][k], g, atol=1e-5, rtol=1e-5, msg=f"grad {k}")
        assert got["state"].keys() == plain.state_dict().keys()  # the model itself is not changed
        for k, v in ref["state"].items():  # running_mean/var (unbiased), num_batches_tracked, momentum=None
            torch.testing.assert_close(got["state"][k], v, atol=1e-5, rtol=1e-5, msg=f"state {k}")
        torch.testing.assert_close(got["eval"], ref["eval"][rank::2], atol=1e-5, rtol=1e-5)
    # without synchronisation the half-batches' statistics differ: the check above has teeth
    half = _steps(_net(), _batches(), slice(0, None, 2))
    assert not torch.allclose(half["outputs"][0], ref["outputs"][0][0::2], atol=1e-3)


def _nncf_worker(rank: int, port: int, out: str) -> None:
    """A QAT model with BatchNorm left unfolded: NNCF's quantizers on ``.../batch_norm/0`` outputs
    must still apply under the mode (one rank: synchronised statistics are the plain ones)."""
    import copy

    import torch.distributed as tdist

    from edgekd.engines.models.build import build_model
    from edgekd.engines.quantization.recipe import QuantRecipe, apply_recipe
    from edgekd.engines.train.sync_bn import SyncedBatchNorm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=1)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]})
    x = torch.randn(16, 3, 16, 16)
    q, _ = apply_recipe(model, [x], QuantRecipe("mixed", fold_batchnorm=False), quiet=True)
    q.train()
    twin, mode = copy.deepcopy(q), SyncedBatchNorm()
    with mode:
        synced = twin(x)
    hooked = [k for k in q.state_dict() if "batch_norm/0" in k]
    torch.save({"plain": q(x).detach(), "synced": synced.detach(), "kinds": sorted(mode.kinds),
                "hooked": hooked}, out)
    tdist.destroy_process_group()


@pytest.mark.slow
def test_nncf_quantizers_on_batchnorm_outputs_still_apply(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    port = free_port()
    mp.spawn(_nncf_worker, args=(port, str(tmp_path / "q")), nprocs=1, join=True)
    got = torch.load(tmp_path / "q")
    assert got["hooked"]  # NNCF did put quantizers on BatchNorm outputs
    assert got["kinds"] == ["synchronised (all-reduce, CPU)"]  # the mode saw NNCF's batch_norm calls
    torch.testing.assert_close(got["synced"], got["plain"], atol=1e-5, rtol=1e-5)


def test_one_process_trains_without_the_mode() -> None:
    """No process group: the trainer enters no mode and records nothing."""
    from edgekd.core.config import DataConfig, LossTerm, TrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.train import sync_bn
    from edgekd.engines.train.trainer import train

    sync_bn.take_record()
    data = load_data(DataConfig(source="digits", image_size=8))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 10))
    train(model, data, TrainConfig(epochs=1, batch_size=32, max_steps_per_epoch=2, loss=[LossTerm(name="ce")]))
    assert sync_bn.take_record() is None
