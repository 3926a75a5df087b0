"""ONNX Runtime (CPU execution provider; CUDA provider when installed and asked for)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.core.errors import BenchError
from edgekd.core.registries import RUNTIMES
from edgekd.engines.runtimes.base import Runner, Runtime


def ort_session(path: Path, threads: int | None, device: str = "cpu"):
    """An InferenceSession with full graph optimisation and a fixed thread count."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BenchError("onnxruntime here has no CUDAExecutionProvider", hint="pip install onnxruntime-gpu")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # ORT raises its own exception types
        raise BenchError(f"onnxruntime cannot load {path}: {exc}") from None


def optimized_op_types(path: Path) -> list[str]:
    """The operators ONNX Runtime actually runs after its graph optimiser (CPU provider):
    e.g. whether a Q/DQ convolution became an integer ``QLinearConv`` or stayed float."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]


@RUNTIMES.register("onnxruntime", help="ONNX Runtime, CPU execution provider")
class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def unavailable_reason(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime)"
        return None

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        import onnxruntime as ort

        sess = ort_session(path, threads, device)
        name = sess.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return sess.run(None, {name: x})[0]

        return Runner(run, "onnxruntime", ort.__version__, device, precision, threads)
