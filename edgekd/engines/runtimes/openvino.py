"""OpenVINO runtime (CPU plugin here; GPU/NPU plugins where the target has them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.core.errors import BenchError
from edgekd.core.registries import RUNTIMES
from edgekd.core.signal_stack import keep_signal_stack
from edgekd.engines.runtimes.base import Runner, Runtime

OV_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32"}  # int8 IR: FakeQuantize ops decide, f32 elsewhere


@RUNTIMES.register("openvino", help="OpenVINO runtime, CPU plugin (IR .xml)")
class OpenVINORuntime(Runtime):
    name = "openvino"

    def unavailable_reason(self) -> str | None:
        try:
            import openvino  # noqa: F401
        except ImportError:
            return "openvino is not installed (pip install openvino)"
        return None

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        """Compiled per input shape (static shapes run faster than the dynamic batch axis)."""
        import openvino as ov

        core = ov.Core()
        ov_device = "CPU" if device == "cpu" else device.upper()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise BenchError(f"openvino cannot read {path}: {exc}") from None
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": OV_PRECISION.get(precision, "f32")}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        requests: dict[tuple[int, ...], object] = {}

        def run(x: np.ndarray) -> np.ndarray:
            req = requests.get(x.shape)
            if req is None:
                m = model.clone()
                m.reshape({m.inputs[0].any_name: list(x.shape)})
                with keep_signal_stack():  # see core/signal_stack.py: OpenVINO leaves a dangling one
                    compiled = core.compile_model(m, ov_device, config)
                req = requests[x.shape] = compiled.create_infer_request()
            req.infer({0: x})  # type: ignore[attr-defined]
            return req.get_output_tensor(0).data.copy()  # type: ignore[attr-defined]

        return Runner(run, "openvino", ov.__version__.split("-")[0], device, precision, threads,
                      notes=f"{ov_device} plugin, hint {config['INFERENCE_PRECISION_HINT']}")
