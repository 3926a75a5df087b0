"""TensorRT engines (on a CUDA GPU with the tensorrt package); the runner is the device kit's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.core.registries import RUNTIMES
from edgekd.engines.runtimes.base import Runner, Runtime


def tensorrt_here() -> str | None:
    """None when engines can be built and run here, else why not."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the tensorrt package is not installed here (pip install 'edgekd[tensorrt]' on a CUDA machine)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU here"
    return None


@RUNTIMES.register("tensorrt", help="TensorRT engine (.engine), CUDA GPU with the tensorrt package")
class TensorRTRuntime(Runtime):
    name = "tensorrt"

    def unavailable_reason(self) -> str | None:
        return tensorrt_here()

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cuda") -> Runner:
        from edgekd.core.devicekit import load_kit

        runner = load_kit().TensorRTRunner(Path(path))

        def run(x: np.ndarray) -> np.ndarray:
            return runner(x)

        return Runner(run, "tensorrt", runner.version, "cuda", precision, None,
                      notes="includes host<->device copies")
