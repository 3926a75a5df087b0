"""PyTorch eager (the baseline users start from) on CPU, and on CUDA in FP16 replayed as a
CUDA graph: batch-1 GPU latency is launch-bound (resnet50 at 224 px on an H100: 5.5 ms
eager FP16 vs 1.0 ms as a CUDA graph), so timing eager GPU calls measures Python, not
the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgekd.core.registries import RUNTIMES
from edgekd.engines.runtimes.base import Runner, Runtime


def _cuda_graph_runner(model: torch.nn.Module, dtype: torch.dtype):
    """``run(x)`` that copies x into a static input, replays one captured graph, returns logits.

    One graph per input shape; capture after warm-up on a side stream (PyTorch's recipe).
    """
    graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @torch.inference_mode()
    def run(x: np.ndarray) -> np.ndarray:
        entry = graphs.get(x.shape)
        if entry is None:
            static_in = torch.from_numpy(x).to("cuda", dtype)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    model(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = model(static_in)
            entry = graphs[x.shape] = (graph, static_in, static_out)
        graph, static_in, static_out = entry
        static_in.copy_(torch.from_numpy(x), non_blocking=True)
        graph.replay()
        return static_out.float().cpu().numpy()  # .cpu() waits for the GPU

    return run


@RUNTIMES.register("torch", help="PyTorch eager on CPU; FP16 CUDA graph on a CUDA GPU")
class TorchRuntime(Runtime):
    name = "torch"

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        from edgekd.engines.models.artifact import load_model

        model, _ = load_model(path)
        return self.wrap(model, precision=precision, threads=threads, device=device)

    def wrap(self, model: torch.nn.Module, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        if threads:
            torch.set_num_threads(threads)
        dev = torch.device(device)
        model = model.to(dev).eval()
        if dev.type == "cuda":
            dtype = torch.float16 if precision == "fp16" else torch.float32
            model = model.to(dtype=dtype, memory_format=torch.channels_last)
            return Runner(_cuda_graph_runner(model, dtype), "torch", torch.__version__, device, precision, None,
                          torch.cuda.synchronize, notes=f"CUDA graph, {torch.cuda.get_device_name(dev)}")

        @torch.inference_mode()
        def run(x: np.ndarray) -> np.ndarray:
            return model(torch.from_numpy(x)).float().numpy()

        return Runner(run, "torch", torch.__version__, device, precision, torch.get_num_threads(), notes="eager")
