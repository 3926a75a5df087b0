"""Transformers through quantization and export: NNCF's transformer placement, Q/DQ ONNX that
ONNX Runtime runs like the fake-quantized model, and TensorRT's rules for MatMul weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgekd.engines.exporters.onnx_io import export_onnx, strip_quantizers
from edgekd.engines.exporters.tensorrt_rules import check_qdq, int8_attention
from edgekd.engines.models.build import build_model
from edgekd.engines.quantization.nncf_int8 import quantized_layers, quantizer_config
from edgekd.engines.quantization.recipe import QuantRecipe, apply_recipe
from edgekd.engines.runtimes.onnxruntime import OnnxRuntime

VIT = {"img_size": 32, "patch_size": 4, "depth": 1, "embed_dim": 64, "num_heads": 2}


@pytest.fixture(scope="module")
def vit_int8() -> tuple[torch.nn.Module, torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model("vit_tiny_patch16_224", 10, VIT).eval()
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    qmodel, _ = apply_recipe(model, [x], QuantRecipe("tensorrt"), quiet=True)
    return qmodel, ref, x


def test_nncf_quantizes_the_matmul_inputs_of_a_vit_and_keeps_norms_softmax_and_gelu_in_float(vit_int8) -> None:
    qmodel, ref, x = vit_int8
    hooks = quantized_layers(quantizer_config(qmodel))
    assert any("attn/qkv/linear" in h for h in hooks) and any("mlp/fc2/linear" in h for h in hooks)
    assert any("scaled_dot_product_attention" in h for h in hooks)  # q·kᵀ's inputs
    assert not any(k in h for h in hooks for k in ("layer_norm", "softmax", "gelu"))
    with torch.no_grad():
        out = qmodel(x)
    assert (out.argmax(1) == ref.argmax(1)).float().mean() >= 0.8  # calibrated INT8 keeps the float decisions


def test_the_int8_vit_exports_to_qdq_onnx_that_onnxruntime_runs_and_tensorrt_accepts(vit_int8, tmp_path: Path) -> None:
    qmodel, _, x = vit_int8
    path = export_onnx(strip_quantizers(qmodel, x[:1]), x[:1], tmp_path / "vit_int8.onnx", 17)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "LayerNormalization", "Softmax", "MatMul"} <= ops
    out = OnnxRuntime().load(path, precision="int8", threads=1).run(x[:4].numpy())
    with torch.no_grad():
        fake = qmodel(x[:4]).numpy()
    assert np.abs(out - fake).max() < 0.05 * np.abs(fake).max()
    assert check_qdq(path) == []  # the linear layers' weights (DQ → Transpose → MatMul) are weights
    # timm scales q and k after their quantizers: TensorRT runs those MatMuls in float, and this says so
    attention = int8_attention(path)
    assert len(attention) == 2 and not any(attention.values())


def _matmul_with_weight_axis(axis: int) -> onnx.ModelProto:
    """x[1,4] · Transpose(DQ(Q(W[3,4]), per channel on ``axis``)) — a token linear layer's shape."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), "W")
    n = 3 if axis == 0 else 4
    scale = numpy_helper.from_array(np.full(n, 0.1, np.float32), "s")
    zp = numpy_helper.from_array(np.zeros(n, np.int8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["W", "s", "z"], ["Wq"], axis=axis),
             helper.make_node("DequantizeLinear", ["Wq", "s", "z"], ["Wd"], axis=axis),
             helper.make_node("Transpose", ["Wd"], ["Wt"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "Wt"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w, scale, zp])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_matmul_weights_are_checked_on_the_axis_the_matmul_reads(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(_matmul_with_weight_axis(0), str(good))  # output channels of W[out, in]: B's last axis after the transpose
    onnx.save(_matmul_with_weight_axis(1), str(bad))
    assert check_qdq(good) == []
    assert check_qdq(bad) == ["Wd: MatMul weights must be quantized along axis 1 where it reads them, not 0",
                              "Wq: MatMul weights must be quantized along axis 1 where it reads them, not 0"]
