"""TensorRT engines (on a CUDA GPU with the tensorrt package); the runner is the device kit's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.core.registries import BACKENDS
from edgekd.latency.backends.base import Backend, Runner


@BACKENDS.register("tensorrt", help="TensorRT engine (.engine), CUDA GPU with the tensorrt package")
class TensorRTBackend(Backend):
    name = "tensorrt"
    formats = ("tensorrt",)

    def unavailable_reason(self) -> str | None:
        from edgekd.exporters.tensorrt import tensorrt_here

        return tensorrt_here()

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cuda") -> Runner:
        from edgekd.devicekit import load_kit

        runner = load_kit().TensorRTRunner(Path(path))

        def run(x: np.ndarray) -> np.ndarray:
            return runner(x)

        return Runner(run, "tensorrt", runner.version, "cuda", precision, None,
                      notes="includes host<->device copies")
