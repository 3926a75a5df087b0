"""Calibrating the roofline on this machine: measured peaks, a zoo of models, a fit.

`edgekd profiles calibrate host` measures the CPU's FP32 matmul throughput and memory
bandwidth, exports a set of models of several families and sizes to ONNX (FP32, and INT8
Q/DQ via NNCF PTQ on random calibration data: latency does not depend on the values),
times them in ONNX Runtime, and fits the efficiency factors (calibrate.py).
Device targets are calibrated the same way from device-kit results instead
(`--from results.json`), since their hardware is not here.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekd.core.progress import SILENT, Reporter
from edgekd.engines.latency.calibrate import Sample
from edgekd.engines.latency.onnx_graph import analyze


@dataclass(frozen=True)
class ZooModel:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    size: int = 32
    int8: bool = False

    @property
    def transformer(self) -> bool:
        """A transformer or ConvNeXt (LayerNorm, GELU, attention): scored apart from the CNNs."""
        return self.name.startswith(TRANSFORMER_FAMILIES)

    @property
    def label(self) -> str:
        kw = ",".join(f"{k}={v}" for k, v in self.kwargs.items() if k != "num_classes")
        return f"{self.name}{'(' + kw + ')' if kw else ''}@{self.size}{' int8' if self.int8 else ''}"


R = "resnet18"
TRANSFORMER_FAMILIES = ("vit_", "deit_", "swin_", "convnext_")
VIT, DEIT, SWIN = "vit_tiny_patch16_224", "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224"


def _vit(name: str, patch: int, depth: int, dim: int, heads: int, size: int = 32) -> ZooModel:
    """A timm ViT/DeiT cut to edgekd's sizes: 32 px, 4x4 patches (64 tokens and a class token)."""
    return ZooModel(name, {"img_size": size, "patch_size": patch, "depth": depth, "embed_dim": dim,
                           "num_heads": heads}, size)


def _swin(dim: int, depths: tuple[int, ...], heads: tuple[int, ...], size: int = 32) -> ZooModel:
    """A timm Swin at 32 px: 2x2 patches, 4x4 windows (shifted in every second block)."""
    return ZooModel(SWIN, {"img_size": size, "patch_size": 2, "window_size": 4, "embed_dim": dim, "depths": depths,
                           "num_heads": heads}, size)


# Two disjoint sets: fit on "calibration", judge on "evaluation" (benchmarks/latency_prediction.py).
ZOO: dict[str, list[ZooModel]] = {
    "calibration": [
        ZooModel(R, {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}, 32),
        ZooModel(R, {}, 32), ZooModel(R, {}, 64), ZooModel("resnet50", {}, 32),
        ZooModel("mobilenetv3_small_050", {}, 32), ZooModel("mobilenetv3_small_100", {}, 64),
        ZooModel("mobilenetv3_large_100", {}, 32), ZooModel("efficientnet_b0", {}, 32),
        ZooModel("regnetx_002", {}, 64), ZooModel("ghostnet_100", {}, 32), ZooModel("mnasnet_100", {}, 64),
        ZooModel("lcnet_100", {}, 64),
        ZooModel(R, {}, 32, int8=True), ZooModel("mobilenetv3_small_100", {}, 32, int8=True),
        ZooModel(R, {"layers": [1, 1, 1, 1], "channels": [32, 64, 128, 256]}, 64, int8=True),
        ZooModel("efficientnet_b0", {}, 64, int8=True),
        # more families and sizes: with per-kind overheads the fit has ~15 factors, and 16 models
        # left its held-out error to the luck of one noisy timing (18% or 11% on two measurements)
        ZooModel("resnet14t", {}, 64), ZooModel("resnet18d", {}, 32), ZooModel("mobilenetv2_050", {}, 64),
        ZooModel("mobilenetv2_100", {}, 32), ZooModel("regnetx_006", {}, 32), ZooModel("regnety_002", {}, 64),
        ZooModel("lcnet_075", {}, 64), ZooModel("mnasnet_050", {}, 32), ZooModel("tinynet_a", {}, 32),
        ZooModel("tinynet_e", {}, 64), ZooModel("ghostnet_130", {}, 32), ZooModel("semnasnet_050", {}, 64),
        ZooModel("fbnetc_100", {}, 32), ZooModel("resnet50", {}, 64), ZooModel("efficientnet_es", {}, 32),
        ZooModel("mobilenetv4_conv_small", {}, 64), ZooModel(R, {}, 48),
        ZooModel("resnet50", {}, 32, int8=True), ZooModel("regnety_002", {}, 64, int8=True),
        ZooModel("mobilenetv2_100", {}, 32, int8=True), ZooModel("resnet14t", {}, 64, int8=True),
        ZooModel(R, {}, 64, int8=True), ZooModel("tinynet_a", {}, 64, int8=True),
        # transformers and ConvNeXt (FP32 only): attention, LayerNorm, Softmax, GELU
        _vit(VIT, 4, 4, 96, 3), _vit(VIT, 4, 6, 192, 3), _vit(VIT, 2, 2, 64, 2), _vit(DEIT, 4, 3, 128, 2),
        _vit("deit_tiny_distilled_patch16_224", 4, 4, 128, 4), ZooModel("convnext_atto", {}, 32),
        ZooModel("convnext_femto", {}, 64), ZooModel("convnext_pico", {}, 32), _swin(48, (2, 2, 2), (2, 4, 8)),
    ],
    "evaluation": [
        ZooModel(R, {"layers": [2, 2, 2, 2], "channels": [24, 48, 96, 192]}, 32),
        ZooModel("resnet34", {}, 32), ZooModel("resnet10t", {}, 64), ZooModel("resnet18", {}, 96),
        ZooModel("mobilenetv3_small_075", {}, 32), ZooModel("mobilenetv3_large_075", {}, 64),
        ZooModel("efficientnet_lite0", {}, 64), ZooModel("regnetx_004", {}, 32), ZooModel("ghostnet_050", {}, 64),
        ZooModel("lcnet_050", {}, 32), ZooModel("mnasnet_small", {}, 32), ZooModel("tinynet_d", {}, 64),
        ZooModel("resnet34", {}, 32, int8=True), ZooModel("mobilenetv3_large_075", {}, 64, int8=True),
        ZooModel("resnet10t", {}, 32, int8=True), ZooModel("regnetx_004", {}, 64, int8=True),
        ZooModel("lcnet_100", {}, 32, int8=True),
        _vit(VIT, 4, 5, 144, 3), _vit(DEIT, 4, 2, 64, 2), _vit(VIT, 2, 3, 96, 3),
        _vit("deit_tiny_distilled_patch16_224", 4, 3, 96, 3), ZooModel("convnext_femto", {}, 32),
        ZooModel("convnext_atto", {}, 64), _swin(64, (2, 2), (2, 4)), _swin(32, (2, 2, 2), (1, 2, 4)),
    ],
}


def measure_peaks(threads: int, seconds: float = 1.0) -> dict[str, float]:
    """FP32 matmul GFLOP/s and copy bandwidth GB/s on this machine (best of a few runs)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9)
    src = np.ones(64 << 20, dtype=np.float32)  # 256 MB, far beyond the caches
    dst = np.empty_like(src)
    bw = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        bw = max(bw, 2 * src.nbytes / (time.perf_counter() - t0) / 1e9)
    return {"fp32_gflops": round(best, 1), "bandwidth_gbs": round(bw, 1)}


def last_level_cache_mb() -> float | None:
    """This CPU's largest cache (Linux sysfs), or None where the OS does not say."""
    best = None
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level, size = int((index / "level").read_text()), (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 / 1024, "M": 1.0, "G": 1024.0}.get(size[-1:])
        if scale is None or not size[:-1].isdigit():
            continue
        if best is None or level > best[0]:
            best = (level, int(size[:-1]) * scale)
    return best[1] if best else None


def export_zoo_model(m: ZooModel, folder: Path, num_classes: int = 10) -> Path:
    from edgekd.engines.exporters.onnx_io import export_onnx, refuse_vendor_ops, strip_quantizers
    from edgekd.engines.models.build import build_model
    from edgekd.engines.quantization.recipe import QuantRecipe, apply_recipe

    torch.manual_seed(0)
    model = build_model(m.name, num_classes, m.kwargs).eval()
    x = torch.randn(2, 3, m.size, m.size)
    path = folder / f"{abs(hash(m.label))}.onnx"
    if m.int8:  # the quantize stage's CPU recipe; latency does not depend on the calibration values
        q, _ = apply_recipe(model, [torch.randn(16, 3, m.size, m.size)], QuantRecipe("mixed"), quiet=True)
        refuse_vendor_ops(export_onnx(strip_quantizers(q, x), x, path, 17))
        return path
    return export_onnx(model, x, path, 17)


def measure_onnx(path: Path, size: int, threads: int, repeats: int = 60, batch: int = 1) -> float:
    """Median ms of ``repeats`` ONNX Runtime calls in one fresh session."""
    from edgekd.engines.latency.timing import summarize, time_calls
    from edgekd.engines.runtimes.onnxruntime import OnnxRuntime

    runner = OnnxRuntime().load(path, precision="fp32", threads=threads)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    for _ in range(10):
        runner.run(x)
    return summarize(time_calls(lambda: runner.run(x), repeats)).median_ms


def measure_passes(paths: list[tuple[Path, int]], threads: int, passes: int = 5, reporter: Reporter = SILENT,
                   label: str = "timing", seed: int = 0) -> np.ndarray:
    """Each model's median ms in each of ``passes`` passes over all models: shape (models, passes).

    Why passes and not one long run: on a shared machine the same model's median can move by
    half or more between back-to-back sessions (neighbours' load comes in bursts longer than a
    run), while the median of several passes repeats far more closely. Every pass visits the
    models in a new (seeded) order, so a slow minute, or a large model that evicts the caches,
    does not always land on the same ones. One session at a time: ORT sessions interleaved
    call by call slow each other several times over (idle pools still spinning).
    """
    order = np.random.default_rng(seed)
    out = np.zeros((len(paths), passes))
    with reporter.task(label, total=passes * len(paths)) as adv:
        for j in range(passes):
            for i in order.permutation(len(paths)):
                path, size = paths[i]
                out[i, j] = measure_onnx(path, size, threads)
                adv(1)
    return out


def measure_zoo(paths: list[tuple[Path, int]], threads: int, passes: int = 5, reporter: Reporter = SILENT,
                label: str = "timing") -> list[float]:
    """Median over ``passes`` of each model's per-pass median."""
    return [float(v) for v in np.median(measure_passes(paths, threads, passes, reporter, label), axis=1)]


def export_zoo(split: str, folder: Path, reporter: Reporter = SILENT) -> list[tuple[Path, int]]:
    """Every model of one zoo split as ONNX in ``folder``: (path, input size) pairs."""
    paths = []
    with reporter.task(f"exporting the calibration zoo ({split})", total=len(ZOO[split])) as adv:
        for m in ZOO[split]:
            paths.append((export_zoo_model(m, folder), m.size))
            adv(1, status=m.label)
    return paths


def zoo_sample(m: ZooModel, path: Path, measured_ms: float) -> Sample:
    return Sample(m.label, analyze(path), "int8" if m.int8 else "fp32", measured_ms)


def zoo_samples(split: str, threads: int, reporter: Reporter = SILENT, passes: int = 5) -> list[Sample]:
    """Export and time every model of one zoo split; returns roofline fitting samples."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_zoo(split, Path(tmp), reporter)
        ms = measure_zoo(paths, threads, passes, reporter, f"timing the zoo ({split}, {passes} passes)")
        return [zoo_sample(m, p, t) for m, (p, _), t in zip(ZOO[split], paths, ms, strict=True)]
