"""Does INT8 run faster than FP32 in ONNX Runtime, with and without BatchNorm folded first?

For each model: FP32 ONNX, INT8 Q/DQ ONNX quantized as before (BN left in), and INT8
quantized after `fold_batchnorm` (what the quantize stage does now). Reports how many
convolutions ONNX Runtime turned into integer QLinearConv and the median latency of the
three, measured interleaved in one run (batch 1, 2 threads).

    python benchmarks/int8_bn_fold.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import common
import numpy as np
import torch

from edgekd.engines.exporters.onnx_io import export_onnx, strip_quantizers
from edgekd.engines.latency.timing import summarize, time_calls
from edgekd.engines.models.build import build_model
from edgekd.engines.quantization.bn_fold import fold_batchnorm
from edgekd.engines.quantization.nncf_int8 import quantize
from edgekd.engines.runtimes.onnxruntime import OnnxRuntime, optimized_op_types, ort_session

MODELS = [("resnet18", {}, 64), ("resnet18", {"channels": [32, 64, 128, 256]}, 32),
          ("mobilenetv3_small_100", {}, 64), ("edgekd.engines.search.builders:mobilenetv3",
                                               {"size": "small", "width": 0.5, "depth": 0.75}, 32)]


def integer_convs(path: Path) -> tuple[int, int]:
    """(QLinearConv, float Conv) after ONNX Runtime's optimiser."""
    ops = optimized_op_types(path)
    return ops.count("QLinearConv"), sum(o in ("Conv", "FusedConv") for o in ops)


def main() -> None:
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw, size in MODELS:
            x = torch.randn(2, 3, size, size)
            calib = [torch.randn(32, 3, size, size)]
            files = {"fp32": export_onnx(build_model(name, 10, kw).eval(), x, Path(tmp) / "f.onnx", 17)}
            for label, fold in (("int8 (BN kept)", False), ("int8 (BN folded)", True)):
                torch.manual_seed(0)
                m = build_model(name, 10, kw).eval()
                if fold:
                    fold_batchnorm(m)
                q = quantize(m, calib, symmetric=False, per_channel=True, ignored=[], quiet=True)
                files[label] = export_onnx(strip_quantizers(q, x), x, Path(tmp) / f"{fold}.onnx", 17)
            ort_session(files["fp32"], 2)  # warm the library
            runners = {k: OnnxRuntime().load(p, precision="fp32", threads=2) for k, p in files.items()}
            xi = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
            samples: dict[str, list[float]] = {k: [] for k in runners}
            for r in runners.values():
                for _ in range(10):
                    r.run(xi)
            for _ in range(10):  # interleaved rounds
                for k, r in runners.items():
                    samples[k] += time_calls(lambda r=r, xi=xi: r.run(xi), 20)
            ms = {k: summarize(v).median_ms for k, v in samples.items()}
            label = f"{name.split(':')[-1]}{kw or ''}@{size}"
            row = {"model": label, "median_ms": ms,
                   "integer_convs": {k: integer_convs(files[k]) for k in files if k != "fp32"}}
            rows.append(row)
            print(f"| {label} | {ms['fp32']:.3f} | {ms['int8 (BN kept)']:.3f} | {ms['int8 (BN folded)']:.3f} | "
                  f"{row['integer_convs']['int8 (BN kept)'][0]} / {row['integer_convs']['int8 (BN folded)'][0]} of "
                  f"{sum(row['integer_convs']['int8 (BN folded)'])} |", flush=True)
    print(common.save("int8_bn_fold", {"rows": rows}))


if __name__ == "__main__":
    main()
