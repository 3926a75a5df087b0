"""Does a Q/DQ ONNX file follow TensorRT's explicit-quantization rules?

TensorRT cannot be installed on our machines, so what we can check here is the graph:
(docs: "Explicit Quantization", TensorRT developer guide)
* INT8 is symmetric: every zero point is 0 and of type INT8 (UINT8 is rejected);
* scales are positive constants;
* activations are quantized per tensor; weights per tensor or per output channel
  (axis 0 for Conv/Gemm weights, axis 1 for ConvTranspose);
* per-channel axes need opset ≥ 13; no vendor-domain ops (e.g. FakeQuantize).
Transformers add two cases. A linear layer on tokens exports as ``DQ(W) → Transpose → MatMul``:
the weight is still a weight (its Q reads a constant), and its per-channel axis is checked
where the MatMul reads it, after the transpose (the output channels: the last axis of B).
The attention's q·kᵀ and attn·v multiply two activations: both must be per tensor, and
:func:`int8_attention` says whether each reads its Q/DQ directly (TensorRT runs it in INT8) or
through other ops (it stays in float: timm scales q and k after the quantizers).
A model that breaks one of these fails to build or silently loses accuracy on the device
(TensorRT #3577, #4494, Model-Optimizer #38), so the tensorrt exporter refuses it here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

WEIGHT_AXIS = {"Conv": 0, "Gemm": 0, "MatMul": 1, "ConvTranspose": 1}


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    for n in model.graph.node:  # Identity of a constant is still a constant (the legacy exporter adds them)
        if n.op_type == "Identity" and n.input[0] in out:
            out[n.output[0]] = out[n.input[0]]
    return out


def check_qdq(path: str | Path) -> list[str]:
    """Violations of TensorRT's explicit-quantization rules (empty list: the file follows them)."""
    model = onnx.load(str(path))
    consts = _constants(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producers = {o: n for n in model.graph.node for o in n.output}
    ranks: dict[str, int] | None = None
    problems: list[str] = []
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            problems.append(f"{n.name or n.op_type}: op {n.domain}:{n.op_type} is not standard ONNX")
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        name = n.name or n.output[0]
        scale = consts.get(n.input[1])
        if scale is None:
            problems.append(f"{name}: scale is not a constant")
        elif not np.all(scale > 0):
            problems.append(f"{name}: scale must be positive")
        if len(n.input) > 2 and n.input[2]:
            zp = consts.get(n.input[2])
            if zp is None:
                problems.append(f"{name}: zero point is not a constant")
            else:
                if zp.dtype != np.int8:
                    problems.append(f"{name}: zero point is {zp.dtype}, TensorRT needs int8 (signed, symmetric)")
                if np.any(zp != 0):
                    problems.append(f"{name}: zero point is not 0 (asymmetric); TensorRT supports symmetric only")
        per_channel = scale is not None and scale.size > 1
        if per_channel:
            if opset < 13:
                problems.append(f"{name}: per-channel quantization needs opset >= 13 (file has {opset})")
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            is_weight = n.input[0] in consts or n.op_type == "DequantizeLinear" and (
                _quantizes_constant(n, consts, producers) or _feeds_weight(n, consumers))
            if not is_weight:
                problems.append(f"{name}: activations must be quantized per tensor, not per channel")
            else:
                for c, seen_axis in _weight_users(n, consumers, axis):
                    want = WEIGHT_AXIS.get(c.op_type)
                    if c.op_type == "MatMul":
                        ranks = ranks if ranks is not None else _ranks(model)  # inferred once, when first needed
                        want = ranks.get(c.input[1], 2) - 1  # B's last axis: the output channels
                    if want is not None and seen_axis != want:
                        problems.append(f"{name}: {c.op_type} weights must be quantized along axis {want} where "
                                        f"it reads them, not {seen_axis}")
    return sorted(set(problems))


def _dq_outputs(n: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> list[onnx.NodeProto]:
    """The DequantizeLinear consumers of a QuantizeLinear (or the node itself if it is a DQ)."""
    if n.op_type == "DequantizeLinear":
        return [n]
    return [c for c in consumers.get(n.output[0], []) if c.op_type == "DequantizeLinear"]


def _weight_users(n: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]],
                  axis: int = 0) -> list[tuple[onnx.NodeProto, int]]:
    """Layers reading this quantizer's output as their weight (input 1), each with the quantized
    axis as that layer sees it: a Transpose in between (tokens' linear layers) moves the axis."""
    users = []
    for dq in _dq_outputs(n, consumers):
        todo = [(dq.output[0], axis)]
        while todo:
            tensor, ax = todo.pop()
            for c in consumers.get(tensor, []):
                if c.op_type == "Transpose":
                    perm = next((list(a.ints) for a in c.attribute if a.name == "perm"), None)
                    todo.append((c.output[0], perm.index(ax) if perm and ax in perm else ax))
                elif len(c.input) > 1 and c.input[1] == tensor:
                    users.append((c, ax))
    return users


def _feeds_weight(n: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> bool:
    return bool(_weight_users(n, consumers))


def _quantizes_constant(dq: onnx.NodeProto, consts: dict[str, np.ndarray], producers: dict[str, onnx.NodeProto]) -> bool:
    """A DequantizeLinear of a QuantizeLinear of a constant: weights, whatever reads them."""
    q = producers.get(dq.input[0])
    return q is not None and q.op_type == "QuantizeLinear" and q.input[0] in consts


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Every tensor's rank, from one shape inference of the whole graph."""
    inferred = onnx.shape_inference.infer_shapes(model)
    out = {i.name: len(i.dims) for i in inferred.graph.initializer}
    for v in [*inferred.graph.value_info, *inferred.graph.input]:
        out[v.name] = len(v.type.tensor_type.shape.dim)
    return out


def int8_attention(path: str | Path) -> dict[str, bool]:
    """Each MatMul of two activations (attention's q·kᵀ, attn·v): whether both inputs come straight
    from DequantizeLinear (TensorRT fuses it in INT8) or not (it runs in float)."""
    model = onnx.load(str(path))
    consts = _constants(model)
    producers = {o: n for n in model.graph.node for o in n.output}

    def from_dq(t: str) -> bool:
        src = producers.get(t)
        while src is not None and src.op_type in ("Transpose", "Reshape"):  # layout moves keep the Q/DQ
            src = producers.get(src.input[0])
        return src is not None and src.op_type == "DequantizeLinear"

    return {n.name or n.output[0]: all(from_dq(i) for i in n.input[:2])
            for n in model.graph.node if n.op_type == "MatMul" and not _reads_weight(n, producers, consts)}


def _reads_weight(n: onnx.NodeProto, producers: dict[str, onnx.NodeProto], consts: dict[str, np.ndarray]) -> bool:
    """Whether input 1 of ``n`` is a (dequantized, possibly transposed) constant."""
    src = producers.get(n.input[1])
    while src is not None and src.op_type == "Transpose":
        src = producers.get(src.input[0])
    return n.input[1] in consts or (src is not None and src.op_type == "DequantizeLinear"
                                     and _quantizes_constant(src, consts, producers))
