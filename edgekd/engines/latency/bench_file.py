"""`edgekd bench MODEL --target T`: latency of any exported file, measured or predicted.

``.onnx`` (FP32 or Q/DQ INT8), OpenVINO ``.xml``, TensorRT ``.engine``, or an edgekd
model folder (PyTorch). On ``host`` every runtime that runs the format is timed side by
side; on other targets the ONNX graph goes through the roofline model (an ``.xml`` or
``.engine`` is predicted from the ``.onnx`` next to it with the same model name).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgekd.core.config import BenchConfig
from edgekd.core.errors import BenchError
from edgekd.core.formats import format_of_path, model_suffixes
from edgekd.core.profiles import Profile
from edgekd.core.progress import SILENT, Reporter
from edgekd.engines.exporters.onnx_io import fixed_batch, read_onnx
from edgekd.engines.latency.measure import BenchItem, LatencyRecord, measure_items
from edgekd.engines.latency.predict import predict_records
from edgekd.engines.runtimes.base import runtimes_for


def describe_file(path: Path) -> tuple[str, str, int, int | None]:
    """(format, precision, input size, fixed batch or None) of a model file."""
    if path.is_dir():
        from edgekd.engines.models.artifact import read_spec

        spec = read_spec(path)
        return "torch", "int8" if spec.quantization else "fp32", spec.input_size, None
    known = format_of_path(path)
    if known is None:
        raise BenchError(f"{path}: unknown model format",
                         hint=f"give a {', '.join(model_suffixes())} file or an edgekd model folder")
    onnx_path = _sibling_onnx(path)
    size, precision, batch = 32, "fp32", None
    if onnx_path is not None:
        m = read_onnx(onnx_path, BenchError)
        size = m.graph.input[0].type.tensor_type.shape.dim[-1].dim_value or 32
        batch = fixed_batch(m)
        if any(n.op_type == "QuantizeLinear" for n in m.graph.node):
            precision = "int8"
    hint = re.search(r"_(fp32|fp16|int8)(?:_|\.)", path.name)
    if hint:
        precision = hint.group(1)
    return known.name, precision, size, batch


def _sibling_onnx(path: Path) -> Path | None:
    if path.suffix == ".onnx":
        return path
    stem = re.split(r"_(?:fp32|fp16|int8)", path.stem)[0]
    cand = path.with_name(f"{stem}.onnx")
    return cand if cand.exists() else None


def bench_file(path: Path, targets: list[Profile], cfg: BenchConfig, *, precision: str | None = None,
               reporter: Reporter = SILENT) -> list[LatencyRecord]:
    path = Path(path)
    if not path.exists():
        raise BenchError(f"model file not found: {path}")
    fmt, prec, size, fixed = describe_file(path)
    prec = precision or prec
    if fixed is not None and fixed != cfg.batch_size:
        raise BenchError(f"{path.name} is fixed at batch {fixed}; it cannot run (or be predicted) at batch "
                         f"{cfg.batch_size}", hint=f"bench it with --batch {fixed}, or export it with a dynamic "
                         "batch axis (edgekd's exports have one)")
    label = re.split(r"_(?:fp32|fp16|int8)", path.stem)[0] if path.is_file() else path.name
    records: list[LatencyRecord] = []
    for t in targets:
        if t.measured_here:
            bks = runtimes_for(fmt, cfg.runtimes)
            if not bks:
                raise BenchError(f"no usable runtime here runs {fmt} files (asked: {cfg.runtimes})",
                                 hint="install the runtime, or pass --runtime")
            x = np.random.default_rng(0).standard_normal((cfg.batch_size, 3, size, size)).astype(np.float32)
            items = [BenchItem(label, fmt, prec, path, b.name) for b in bks]
            records += measure_items(items, x, cfg, target=t.name, reporter=reporter)
        else:
            onnx_path = _sibling_onnx(path) if path.is_file() else None
            if onnx_path is None:
                raise BenchError(f"predicting {t.name} needs the ONNX graph of {path.name}",
                                 hint="put the .onnx next to it with the same model name, or bench the .onnx")
            records += predict_records(label, onnx_path, t, quantized=prec == "int8", batch=cfg.batch_size)
    return records
