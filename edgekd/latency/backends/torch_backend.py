"""PyTorch eager (the baseline users start from), on CPU or CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgekd.core.registries import BACKENDS
from edgekd.latency.backends.base import Backend, Runner


@BACKENDS.register("torch", help="PyTorch eager (model artifact folder)")
class TorchBackend(Backend):
    name = "torch"
    formats = ("torch",)

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        from edgekd.models.artifact import load_model

        model, _ = load_model(path)
        return self.wrap(model, precision=precision, threads=threads, device=device)

    def wrap(self, model: torch.nn.Module, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        if threads:
            torch.set_num_threads(threads)
        dev = torch.device(device)
        model = model.to(dev).eval()
        half = precision == "fp16" and dev.type == "cuda"
        if half:
            model = model.half()

        @torch.inference_mode()
        def run(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(x).to(dev)
            out = model(t.half() if half else t)
            return out.float().cpu().numpy()

        sync = torch.cuda.synchronize if dev.type == "cuda" else None
        return Runner(run, "torch", torch.__version__, device, precision, torch.get_num_threads(), sync)
