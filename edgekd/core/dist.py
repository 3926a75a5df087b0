"""More than one process: edgekd under ``torchrun`` (torch.distributed, DistributedDataParallel).

No launcher and no communication layer of our own: ``torchrun`` sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous (``--nnodes``, ``--rdzv-endpoint`` for several machines),
and torch.distributed does the rest. The backend follows the device: nccl on CUDA, gloo on
the CPU. These helpers are no-ops in one process, so the same code runs either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # gloo | nccl; None in one process

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.size, "backend": self.backend or "none (one process)"}


def world() -> World:
    """This process's place in the run (one process when not started by torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                     dist.get_backend())
    return World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> World:
    """Join torchrun's process group (once); gloo on CPU, nccl on CUDA."""
    if not launched_by_torchrun() or not dist.is_available():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return world()


def device_for_rank(device: torch.device) -> torch.device:
    """Each rank on its own GPU (LOCAL_RANK); CPU ranks share the CPU."""
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def barrier() -> None:
    if world().active:
        dist.barrier()


def broadcast(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it, on every rank (picklable plain data)."""
    if not world().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    w = world()
    if not w.active:
        return [obj]
    out: list[Any] = [None] * w.size
    dist.all_gather_object(out, obj)
    return out


def sum_all(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Element-wise sum over ranks."""
    if not world().active:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
