"""The ONNX cost analysis and roofline predictor: exact counts, monotonic sanity, fitting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edgekd.core.profiles import Calibration, resolve_target
from edgekd.engines.exporters.onnx_io import export_onnx
from edgekd.engines.latency.calibrate import Sample, errors, fit, summary
from edgekd.engines.latency.onnx_graph import LayerCost, analyze
from edgekd.engines.latency.roofline import efficiency, predict
from edgekd.engines.models.build import build_model
from edgekd.engines.reporting.choice import choose

DEVICES = ["jetson-orin-nano", "jetson-agx-orin", "jetson-nano", "raspberry-pi-5", "intel-x86-cpu"]


def test_costs_of_known_layers(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    path = export_onnx(net.eval(), torch.randn(1, 3, 8, 8), tmp_path / "n.onnx", 17)
    layers = analyze(path, batch=2)
    convs = [x for x in layers if x.op == "Conv"]
    assert [c.kind for c in convs] == ["conv", "dwconv"]
    assert convs[0].flops == 2 * 2 * 8 * 8 * 8 * 3 * 9  # batch × out pixels × out ch × in ch × k²
    assert convs[1].flops == 2 * 2 * 8 * 8 * 8 * 9
    gemm = next(x for x in layers if x.kind == "gemm")
    assert gemm.flops == 2 * 2 * 8 * 10
    assert not any(x.op == "Relu" for x in layers)  # fused into the conv before it
    assert convs[0].weight_bytes == (8 * 3 * 9 + 8) * 4  # weights and bias, FP32
    assert gemm.weight_bytes == (8 * 10 + 10) * 4


@pytest.mark.parametrize(("size", "unread_taps"), [(1, 8 / 9), (2, 0.0), (8, 0.0)])
def test_weights_only_padding_meets_are_not_read(size: int, unread_taps: float, tmp_path: Path) -> None:
    """A 3x3 conv on a 1x1 map multiplies 8 of its 9 taps by padding: CPU kernels never read
    their weights; on a 2x2 map every tap is used by some output."""
    net = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    path = export_onnx(net.eval(), torch.randn(1, 16, size, size), tmp_path / "c.onnx", 17)
    conv = next(x for x in analyze(path) if x.op == "Conv")
    assert conv.flops == 2 * size * size * 32 * 16 * 9  # conventional count, padding included
    assert conv.weight_bytes == pytest.approx(32 * 16 * 9 * 4 * (1 - unread_taps))
    assert conv.bytes == pytest.approx(conv.weight_bytes + (16 + 32) * size * size * 4)


class _SplitJoin(nn.Module):
    """GhostNet's pattern: a grouped conv, a channel slice, a concat, then a reshape by shape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1, groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = torch.cat([y, y[:, :8] * 2], dim=1)
        return z.reshape(z.shape[0], -1)


def test_copies_cost_bytes_and_grouped_convs_have_their_own_kind(tmp_path: Path) -> None:
    path = export_onnx(_SplitJoin().eval(), torch.randn(1, 16, 4, 4), tmp_path / "g.onnx", 17)
    layers = analyze(path)
    assert [x.kind for x in layers if x.op == "Conv"] == ["gconv"]
    copies = {x.op: x for x in layers if x.kind == "copy"}
    assert sorted(copies) == ["Concat", "Slice"]  # the shape arithmetic before Reshape stays free
    assert copies["Slice"].bytes == 2 * 8 * 4 * 4 * 4  # read and written once, FP32
    assert copies["Concat"].bytes == 2 * 24 * 4 * 4 * 4
    # an uncalibrated profile prices grouped convs as it priced them before they had a kind
    for target in DEVICES:
        prof = resolve_target(target)[0]
        assert efficiency(prof, "gconv", "fp32") == efficiency(prof, "conv", "fp32")


def test_weights_that_fit_in_cache_stream_at_the_cache_factor() -> None:
    layer = [LayerCost("c", "Conv", "conv", 1e3, 3 << 20, "fp32", weight_bytes=2 << 20)]
    base = resolve_target("raspberry-pi-5")[0]
    cal = base.calibration.model_copy(update={"cache_stream_factor": 8.0})

    def ms(cache_mb: float | None, c: Calibration = cal) -> float:
        return predict(layer, base.model_copy(update={"cache_mb": cache_mb, "calibration": c})).ms

    assert ms(4.0) < ms(1.0) == ms(None)  # 2 MB of weights: faster only where they fit
    assert ms(4.0, base.calibration) == ms(None, base.calibration)  # unfitted factor 1: no change
    gpu = resolve_target("jetson-orin-nano")[0]
    gpu_cal = gpu.calibration.model_copy(update={"cache_stream_factor": 8.0})

    def gpu_ms(precision: str, cache_mb: float | None) -> float:
        return predict(layer, gpu.model_copy(update={"cache_mb": cache_mb, "calibration": gpu_cal}), precision).ms

    assert gpu_ms("fp16", 1.5) < gpu_ms("fp16", None)  # 1 MiB of FP16 weights fit 1.5 MiB
    assert gpu_ms("fp32", 1.5) == gpu_ms("fp32", None)  # their 2 MiB in FP32 do not


def test_weights_stream_faster_only_by_the_fitted_factor() -> None:
    """A memory-bound layer's weights may be read faster than a copy moves data (read-only
    streams, caches); the fitted factor speeds up that part only."""
    prof = resolve_target("raspberry-pi-5")[0]
    layer = [LayerCost("c", "Conv", "conv", 1e3, 8e6, "fp32", weight_bytes=6e6)]
    cal = prof.calibration
    times = [predict(layer, prof.model_copy(update={"calibration": cal.model_copy(update={"weight_stream_factor": f})})).ms
             for f in (1.0, 2.0, 4.0)]
    assert times[0] > times[1] > times[2]
    no_weights = predict([LayerCost("c", "Conv", "conv", 1e3, 2e6, "fp32")], prof).ms
    assert times[2] > no_weights


def _prediction(path: Path, target: str, precision: str = "fp32") -> float:
    return predict(analyze(path), resolve_target(target)[0], precision).ms


@pytest.mark.parametrize("target", DEVICES)
def test_more_flops_never_predicts_less_time(target: str, tmp_path: Path) -> None:
    times = []
    for i, width in enumerate((8, 16, 32, 64)):
        m = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [width, 2 * width, 4 * width, 8 * width]})
        path = export_onnx(m.eval(), torch.randn(1, 3, 32, 32), tmp_path / f"{i}.onnx", 13)
        times.append(_prediction(path, target))
    assert times == sorted(times) and times[-1] > times[0]
    layers = [LayerCost("c", "Conv", "conv", 1e9, 1e6, "fp32")]
    prof = resolve_target(target)[0]
    base = predict(layers, prof).ms
    for scale in (2, 10, 100):
        assert predict([LayerCost("c", "Conv", "conv", 1e9 * scale, 1e6, "fp32")], prof).ms >= base
        assert predict([LayerCost("c", "Conv", "conv", 1e9, 1e6 * scale, "fp32")], prof).ms >= base


def test_fitting_recovers_known_factors() -> None:
    """Latencies generated by a known calibration are fitted back to within a few percent."""
    prof = resolve_target("raspberry-pi-5")[0]
    truth = prof.model_copy(update={"calibration": Calibration(
        compute_efficiency={"conv:fp32": 0.5, "dwconv:fp32": 0.08, "gemm:fp32": 0.3}, memory_efficiency=0.4,
        per_layer_overhead_us=12.0, per_inference_overhead_us=80.0)})
    samples = []
    for i in range(12):
        layers = [LayerCost(f"c{j}", "Conv", "conv" if j % 3 else "dwconv", (1 + i) * 3e6 * (j + 1), (5 + j) * 4e4, "fp32")
                  for j in range(4 + i % 5)] + [LayerCost("g", "Gemm", "gemm", 1e5 * (i + 1), 4e4, "fp32")]
        samples.append(Sample(f"m{i}", layers, "fp32", predict(layers, truth).ms))
    start = summary(errors(samples, prof))
    fitted = prof.model_copy(update={"calibration": fit(samples, prof, "test")})
    end = summary(errors(samples, fitted))
    assert end["median_abs_error"] < 0.03 < start["median_abs_error"]


def test_choice_prefers_fastest_and_measured_over_predicted() -> None:
    rows = [
        {"target": "host", "model": "s", "runtime": "onnxruntime", "precision": "fp32", "format": "onnx", "median_ms": 0.3, "kind": "measured"},
        {"target": "host", "model": "s", "runtime": "openvino", "precision": "fp32", "format": "openvino", "median_ms": 0.2, "kind": "measured"},
        {"target": "pi", "model": "s", "runtime": "onnxruntime", "precision": "fp32", "format": "onnx", "median_ms": 1.0, "kind": "predicted"},
        {"target": "pi", "model": "s", "runtime": "onnxruntime", "precision": "fp32", "format": "onnx", "median_ms": 3.0, "kind": "measured"},
    ]
    c = choose(rows)
    assert c["host"]["s"]["runtime"] == "openvino" and c["host"]["s"]["alternatives"][0]["runtime"] == "onnxruntime"
    assert c["pi"]["s"]["kind"] == "measured" and c["pi"]["s"]["median_ms"] == 3.0
    assert c["host"]["s"]["lead"] == 0.5 and not c["host"]["s"]["close_call"]
    rows[0]["median_ms"] = 0.204  # 2% behind: a close call, reported as such
    assert choose(rows)["host"]["s"]["close_call"] and choose(rows)["pi"]["s"]["lead"] is None


def _qdq_conv_graph(act: str):
    """Q(x) → DQ → Conv(DQ(w)) → act → Q → DQ → y, as NNCF exports a quantized conv."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.uint8), "zp"),
             numpy_helper.from_array(np.array(0, np.int8), "wzp"),
             numpy_helper.from_array(np.ones((8, 3, 3, 3), np.int8), "wq")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "s", "wzp"], ["w"]),
             helper.make_node("Conv", ["xd", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node(act, ["c"], ["a"]),
             helper.make_node("QuantizeLinear", ["a", "s", "zp"], ["aq"]),
             helper.make_node("DequantizeLinear", ["aq", "s", "zp"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _int8_block(per_channel_mid: bool):
    """x → Q/DQ → Conv(Q/DQ of FP32 weights) → ReLU → Q/DQ → MaxPool → Conv → Q/DQ → Add(skip) → Q/DQ,
    as NNCF exports a quantized residual block (weights stay FP32 behind a QuantizeLinear)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    mid_scale = np.full(8, 0.1, np.float32) if per_channel_mid else np.array(0.1, np.float32)
    mid_zp = np.zeros(8, np.uint8) if per_channel_mid else np.array(0, np.uint8)
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "zp"),
             numpy_helper.from_array(np.array(0.02, np.float32), "ws"), numpy_helper.from_array(np.array(0, np.int8), "wzp"),
             numpy_helper.from_array(mid_scale, "ms"), numpy_helper.from_array(mid_zp, "mzp"),
             numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((8, 8, 1, 1)).astype(np.float32), "w2")]
    n = helper.make_node
    nodes = [n("QuantizeLinear", ["x", "s", "zp"], ["xq"]), n("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             n("QuantizeLinear", ["w1", "ws", "wzp"], ["w1q"]), n("DequantizeLinear", ["w1q", "ws", "wzp"], ["w1d"]),
             n("Conv", ["xd", "w1d"], ["c1"], pads=[1, 1, 1, 1]), n("Relu", ["c1"], ["r1"]),
             n("QuantizeLinear", ["r1", "ms", "mzp"], ["r1q"], axis=1),
             n("DequantizeLinear", ["r1q", "ms", "mzp"], ["r1d"], axis=1),
             n("MaxPool", ["r1d"], ["p1"], kernel_shape=[1, 1]),
             n("QuantizeLinear", ["w2", "ws", "wzp"], ["w2q"]), n("DequantizeLinear", ["w2q", "ws", "wzp"], ["w2d"]),
             n("Conv", ["p1", "w2d"], ["c2"]), n("QuantizeLinear", ["c2", "s", "zp"], ["c2q"]),
             n("DequantizeLinear", ["c2q", "s", "zp"], ["c2d"]),
             # a per-channel DQ into an Add crashes ONNX Runtime 1.30 at load (it fuses it anyway)
             n("Add", ["c2d", "c2d" if per_channel_mid else "r1d"], ["a"]),
             n("QuantizeLinear", ["a", "s", "zp"], ["aq"]), n("DequantizeLinear", ["aq", "s", "zp"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # ORT 1.30 reads IR <= 13


def test_int8_block_costs_what_onnxruntime_runs(tmp_path: Path) -> None:
    """Weight quantizers fold at load time (free); DQ→Add→Q and DQ→MaxPool run in INT8; a
    per-channel activation quantizer keeps the convs on both sides float. Checked against the
    kernels ONNX Runtime actually picks for the same graph."""
    import onnx

    from edgekd.engines.runtimes.onnxruntime import optimized_op_types

    for per_channel in (False, True):
        model = _int8_block(per_channel)
        path = tmp_path / f"block{per_channel}.onnx"
        onnx.save(model, str(path))
        layers = analyze(path)
        ops = optimized_op_types(path)
        int8_convs = [x for x in layers if x.op == "Conv" and x.precision == "int8"]
        assert len(int8_convs) == ops.count("QLinearConv")
        running_q = [x for x in layers if x.op == "QuantizeLinear"]
        assert len(running_q) == ops.count("QuantizeLinear")  # the weights' QuantizeLinear are not work
        if not per_channel:
            assert len(int8_convs) == 2
            assert {x.op: x.precision for x in layers if x.op in ("Add", "MaxPool")} == {"Add": "int8", "MaxPool": "int8"}
            assert [x.op for x in layers if x.op in ("QuantizeLinear", "DequantizeLinear")] == [
                "QuantizeLinear", "DequantizeLinear"]  # the graph's input and output only
        else:
            assert not int8_convs


def test_int8_only_where_the_runtime_can_fuse_it() -> None:
    """A conv is INT8 only when its output (after ReLU) is quantized; otherwise it stays float
    and its Q/DQ nodes cost memory traffic (ONNX Runtime's and TensorRT's fusion rule)."""
    fused = analyze(_qdq_conv_graph("Relu"))
    (conv,) = [x for x in fused if x.op == "Conv"]
    assert conv.precision == "int8"
    assert {x.op for x in fused if x.kind == "elementwise"} == {"QuantizeLinear", "DequantizeLinear"}  # graph edges
    assert len([x for x in fused if x.op in ("QuantizeLinear", "DequantizeLinear")]) == 2  # in Q, out DQ
    unfused = analyze(_qdq_conv_graph("HardSwish"))
    (conv,) = [x for x in unfused if x.op == "Conv"]
    assert conv.precision == "fp32"
    qdq = [x for x in unfused if x.op in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) == 5  # every Q/DQ runs, the weights' DequantizeLinear included
    assert sum(x.bytes for x in unfused) > sum(x.bytes for x in fused)


# --- transformers and ConvNeXt --------------------------------------------------------------

TINY = {  # timm models cut to a few blocks: each exports and analyses in well under a second
    "vit": ("vit_tiny_patch16_224", {"img_size": 16, "patch_size": 4, "depth": 1, "embed_dim": 32, "num_heads": 2}, 16),
    "swin": ("swin_tiny_patch4_window7_224", {"img_size": 16, "patch_size": 2, "window_size": 4, "embed_dim": 16,
                                              "depths": (2,), "num_heads": (2,)}, 16),
    "convnext": ("convnext_atto", {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)}, 32),
}


def _export_tiny(name: str, tmp_path: Path, opset: int = 17) -> Path:
    model_name, kwargs, size = TINY[name]
    torch.manual_seed(0)
    model = build_model(model_name, 10, kwargs).eval()
    return export_onnx(model, torch.randn(1, 3, size, size), tmp_path / f"{name}{opset}.onnx", opset)


def test_tiny_vit_costs_its_attention_norms_and_gelu(tmp_path: Path) -> None:
    """17 tokens (16 patches and a class token) of width 32, 2 heads of 16, an MLP of 128."""
    from edgekd.engines.latency import onnx_ops

    layers = analyze(_export_tiny("vit", tmp_path))
    by_kind: dict[str, list[LayerCost]] = {}
    for x in layers:
        by_kind.setdefault(x.kind, []).append(x)
    (softmax,) = by_kind["softmax"]
    assert softmax.flops == onnx_ops.SOFTMAX_FLOPS * 2 * 17 * 17
    assert softmax.bytes == 2 * (2 * 17 * 17) * 4  # rows of 17 stay in L1: read once, written once
    norms = by_kind["norm"]
    assert len(norms) == 3  # before attention, before the MLP, the final one
    assert all(x.flops == onnx_ops.LAYERNORM_FLOPS * 17 * 32 and x.weight_bytes == 2 * 32 * 4 for x in norms)
    scores, mixed = by_kind["attention"]  # q·kᵀ, then attn·v: two activations, no weights
    assert scores.flops == 2 * (2 * 17 * 17) * 16 and mixed.flops == 2 * (2 * 17 * 16) * 17
    assert scores.weight_bytes == mixed.weight_bytes == 0
    assert scores.bytes == (2 * 17 * 16 * 2 + 2 * 17 * 17) * 4
    (gelu,) = by_kind["gelu"]  # Div, Erf, Add, Mul, Mul and the fc1 bias Add: ORT's BiasGelu
    assert gelu.op == "BiasGelu" and gelu.flops == (onnx_ops.GELU_FLOPS + 1) * 17 * 128
    assert gelu.weight_bytes == 128 * 4 and gelu.bytes == (2 * 17 * 128 + 128) * 4
    assert not {"Erf", "Div", "Sqrt"} & {x.op for x in layers}
    assert all(x.weight_bytes > 0 for x in by_kind["gemm"])  # qkv, proj, fc1, fc2, head


@pytest.mark.parametrize("name", sorted(TINY))
def test_transformer_layers_are_the_kernels_onnxruntime_runs(name: str, tmp_path: Path) -> None:
    """One layer per LayerNormalization, Softmax, Gelu/BiasGelu and MatMul that ORT's optimiser
    leaves (Swin's windows: shapes from a run where onnx's inference cannot say them)."""
    from edgekd.engines.runtimes.onnxruntime import optimized_op_types

    path = _export_tiny(name, tmp_path)
    layers = analyze(path)
    ops = optimized_op_types(path)
    kinds = [x.kind for x in layers]
    assert kinds.count("norm") == ops.count("LayerNormalization") > 0
    assert kinds.count("softmax") == ops.count("Softmax")
    assert kinds.count("gelu") == ops.count("Gelu") + ops.count("BiasGelu") > 0
    matmuls = sum(ops.count(o) for o in ("MatMul", "FusedMatMul", "Gemm"))
    assert kinds.count("gemm") + kinds.count("attention") == matmuls
    assert all(x.flops > 0 for x in layers if x.kind in ("gemm", "attention", "norm", "softmax", "gelu"))


class _MLP(nn.Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(16, 32), nn.GELU(approximate)
        self.norm, self.out = nn.LayerNorm(32), nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.act(self.fc(x))))


def test_decomposed_gelu_and_layernorm_cost_as_one_layer_each(tmp_path: Path) -> None:
    """At opset 13 GELU is Div, Erf, Add, Mul, Mul and LayerNorm seven nodes: ORT fuses both
    back (BiasGelu, LayerNormalization), and they cost what opset 17's nodes cost. The tanh
    form it does not fuse below opset 20: its nodes stay layers."""
    x = torch.randn(1, 5, 16)
    old = analyze(export_onnx(_MLP().eval(), x, tmp_path / "m13.onnx", 13))
    new = analyze(export_onnx(_MLP().eval(), x, tmp_path / "m17.onnx", 17))
    assert [(a.op, a.kind, a.flops, a.bytes, a.weight_bytes) for a in old] == [
        (b.op, b.kind, b.flops, b.bytes, b.weight_bytes) for b in new]
    assert [a.kind for a in old] == ["gemm", "gelu", "norm", "gemm", "elementwise"]  # the last: out's bias Add on 3-D
    tanh = analyze(export_onnx(_MLP("tanh").eval(), x, tmp_path / "t13.onnx", 13))
    assert "gelu" not in {a.kind for a in tanh}
    assert len([a for a in tanh if a.name.startswith("/act/")]) >= 8  # ORT runs its 10 nodes (the CNN rules fuse 2)


def test_cnn_predictions_do_not_depend_on_the_transformer_kinds(tmp_path: Path) -> None:
    """A CNN has none of the new kinds, so a profile's factors for them cannot move its
    prediction; and a profile fitted before they existed prices them as their parents."""
    from edgekd.engines.latency.roofline import FALLBACK_KIND, launch_kind

    m = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]})
    cnn = analyze(export_onnx(m.eval(), torch.randn(1, 3, 32, 32), tmp_path / "r.onnx", 17))
    assert {x.kind for x in cnn} <= {"conv", "dwconv", "gconv", "gemm", "elementwise", "pool", "copy"}
    vit = analyze(_export_tiny("vit", tmp_path))
    as_before = [LayerCost(x.name, x.op, FALLBACK_KIND.get(x.kind, x.kind), x.flops, x.bytes, x.precision,
                           x.weight_bytes) for x in vit]
    for target in DEVICES:
        prof = resolve_target(target)[0]
        cal = prof.calibration
        new = {f"{k}:fp32": 1e-3 for k in ("attention", "norm", "softmax", "gelu")}
        odd = prof.model_copy(update={"calibration": cal.model_copy(
            update={"compute_efficiency": {**cal.compute_efficiency, **new}})})
        assert predict(cnn, odd).ms == predict(cnn, prof).ms
        # a profile with factors for every parent kind (as `edgekd profiles calibrate` wrote them)
        old_fit = prof.model_copy(update={"calibration": cal.model_copy(update={
            "compute_efficiency": {"conv": 0.4, "gemm": 0.2, "elementwise": 0.9},
            "per_kind_overhead_us": {"gemm": 1.0, "elementwise": 3.0, "conv": 2.0, "copy": 4.0, "pool": 5.0}})})
        assert predict(vit, old_fit).ms == predict(as_before, old_fit).ms
    assert launch_kind("gconv") == "gconv" and launch_kind("attention") == "gemm"
