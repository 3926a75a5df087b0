"""Why MobileNetV3 INT8 is slower than FP32 in ONNX Runtime, and whether a preset or an
ignored scope changes it (one measurement).

The demo's MobileNetV3-Small (w 0.5, d 0.75) at 32 px, BN folded, random weights:
FP32; INT8 with the ``mixed`` preset (the default on CPUs); the symmetric
(``performance``) preset; ``mixed`` with every conv that feeds a HardSwish kept in float
(ignored scope); ``mixed`` with per-tensor activation quantizers (NNCF quantizes depthwise
inputs per channel, which ONNX Runtime's QLinearConv does not take); the ``tensorrt``
preset (symmetric, signed, per-tensor); and, as a diagnosis only, the same network with
HardSwish replaced by ReLU (a different model). For each: convolutions ONNX Runtime runs as QLinearConv, and
the median latency (batch 1, 2 threads, interleaved rounds).

    python benchmarks/int8_hardswish.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import common
import numpy as np
import torch
from int8_bn_fold import integer_convs

from edgekd.engines.exporters.onnx_io import export_onnx, strip_quantizers
from edgekd.engines.latency.timing import summarize, time_calls
from edgekd.engines.models.build import build_model
from edgekd.engines.quantization.bn_fold import fold_batchnorm
from edgekd.engines.quantization.nncf_int8 import quantize
from edgekd.engines.runtimes.onnxruntime import OnnxRuntime

NAME, KW, SIZE = "edgekd.engines.search.builders:mobilenetv3", {"size": "small", "width": 0.5, "depth": 0.75}, 32


def model(relu: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model(NAME, 10, KW).eval()
    if relu:
        for parent in list(m.modules()):
            for n, child in parent.named_children():
                if isinstance(child, torch.nn.Hardswish):
                    setattr(parent, n, torch.nn.ReLU())
    fold_batchnorm(m)
    return m


def convs_before_hardswish(m: torch.nn.Module) -> list[str]:
    """Names of convs whose output goes (through folded BN) straight into a HardSwish, by module order."""
    names, prev = [], None
    for n, mod in m.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            prev = n
        elif isinstance(mod, torch.nn.Hardswish) and prev:
            names.append(prev)
            prev = None
    return names


def per_tensor_mixed(m: torch.nn.Module, calib: list[torch.Tensor]) -> torch.nn.Module:
    """``mixed`` as the stage applies it, but every activation quantizer per tensor."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters

    adv = AdvancedQuantizationParameters(weights_quantization_params=QuantizationParameters(per_channel=True),
                                         activations_quantization_params=QuantizationParameters(per_channel=False))
    return nncf.quantize(m, nncf.Dataset(calib), preset=nncf.QuantizationPreset.MIXED, subset_size=len(calib),
                         advanced_parameters=adv)


def main() -> None:
    x = torch.randn(2, 3, SIZE, SIZE)
    calib = [torch.randn(32, 3, SIZE, SIZE)]
    variants: dict[str, tuple[bool, bool, bool] | None] = {"mixed": (False, False, False), "symmetric (performance)": (False, True, False),
                "mixed, HardSwish convs ignored": (False, False, True), "ReLU instead (diagnosis)": (True, False, False),
                "mixed, per-tensor activations": None, "tensorrt (signed, per-tensor)": None,
                "ReLU + per-tensor activations (diagnosis)": None}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"fp32": export_onnx(model(), x, Path(tmp) / "fp32.onnx", 17)}
        for i, (label, v) in enumerate(variants.items()):
            if label.startswith("tensorrt"):
                q = quantize(model(), calib, symmetric=True, per_channel=True, ignored=[], signed_activations=True,
                             quiet=True)
            elif v is None:
                q = per_tensor_mixed(model(label.startswith("ReLU")), calib)
            else:
                relu, sym, ignore = v
                m = model(relu)
                q = quantize(m, calib, symmetric=sym, per_channel=True, quiet=True,
                             ignored=convs_before_hardswish(m) if ignore else [])
            files[label] = export_onnx(strip_quantizers(q, x), x, Path(tmp) / f"{i}.onnx", 17)
        files["fp32 ReLU"] = export_onnx(model(True), x, Path(tmp) / "relu.onnx", 17)
        runners = {k: OnnxRuntime().load(p, precision="fp32", threads=2) for k, p in files.items()}
        xi = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
        samples: dict[str, list[float]] = {k: [] for k in runners}
        for r in runners.values():
            for _ in range(10):
                r.run(xi)
        for _ in range(8):
            for k, r in runners.items():
                samples[k] += time_calls(lambda r=r: r.run(xi), 20)
        for k in files:
            rows[k] = {"median_ms": summarize(samples[k]).median_ms, "integer_convs": integer_convs(files[k])}
    print("| variant | median ms | QLinearConv / float convs |\n|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v['median_ms']:.3f} | {v['integer_convs'][0]} / {v['integer_convs'][1]} |")
    print(common.save("int8_hardswish", {"rows": rows}))


if __name__ == "__main__":
    main()
