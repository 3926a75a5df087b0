""""How fast is this model on target T?" — one answer for search, prune and bench.

On ``host`` the model is exported to ONNX and timed in ONNX Runtime (measured); on any
other target its ONNX graph goes through the roofline predictor (predicted). The answer
always carries its kind, runtime and precision.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.estimates import LatencyEstimate
from edgekd.core.profiles import Profile
from edgekd.engines.latency.timing import summarize, time_calls
from edgekd.engines.plan.deployment import plan_target
from edgekd.engines.runtimes.base import default_threads


class LatencyOracle:
    def __init__(self, profile: Profile, *, batch: int = 1, threads: int | None = None,
                 precision: str | None = None, repeats: int = 30, opset: int = 17) -> None:
        self.profile = profile
        self.batch = batch
        self.threads = threads or default_threads()
        self.precision = precision or profile.default_precision
        self.repeats = repeats
        self.opset = min(opset, profile.max_onnx_opset or opset)

    def export(self, model: nn.Module, input_size: int, folder: Path) -> Path:
        """The model as ONNX in ``folder``, at the opset this target allows."""
        from edgekd.engines.exporters.onnx_io import export_onnx

        return export_onnx(model, torch.randn(1, 3, input_size, input_size), folder / "m.onnx", self.opset)

    def __call__(self, model: nn.Module, input_size: int) -> LatencyEstimate:
        was_training = model.training
        model.eval()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = self.export(model, input_size, Path(tmp))
                if self.profile.measured_here:
                    return self._measure(path, input_size)
                return self._predict(path)
        finally:
            model.train(was_training)

    def _measure(self, path: Path, input_size: int) -> LatencyEstimate:
        from edgekd.engines.runtimes.onnxruntime import OnnxRuntime

        runner = OnnxRuntime().load(path, precision="fp32", threads=self.threads)
        x = np.random.default_rng(0).standard_normal((self.batch, 3, input_size, input_size)).astype(np.float32)
        for _ in range(5):
            runner.run(x)
        st = summarize(time_calls(lambda: runner.run(x), self.repeats))
        return LatencyEstimate(st.median_ms, "measured", f"onnxruntime {runner.version}", "fp32", self.profile.name)

    def _predict(self, path: Path) -> LatencyEstimate:
        from edgekd.engines.latency.onnx_graph import analyze

        return self.predicted(analyze(path, self.batch))

    def predicted(self, layers: list) -> LatencyEstimate:
        """The roofline's answer for an analysed graph (one analysis serves every target of its opset)."""
        from edgekd.engines.latency.roofline import predict

        pred = predict(layers, self.profile, self.precision)
        runtime = f"roofline ({plan_target(self.profile).runtime})"
        return LatencyEstimate(pred.ms, "predicted", runtime, self.precision, self.profile.name)
