"""Per-layer cost of an ONNX graph: FLOPs and bytes moved, the roofline model's input.

Why hand-written: onnx's shape inference gives the tensor shapes, but no maintained
library turns an ONNX graph into per-layer FLOPs *and* bytes with the precision each
layer runs in (INT8 where a Conv reads DequantizeLinear outputs). The rules here are
small and tested: Conv/ConvTranspose/Gemm/MatMul are compute layers; activations that
directly follow a compute layer are fused into it (as every runtime does); layout ops
are free; everything else is an element-wise, memory-bound layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

FREE_OPS = {"Identity", "Shape", "Constant", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gather",
            "Cast", "ConstantOfShape", "Concat", "Slice", "QuantizeLinear", "DequantizeLinear"}
FUSABLE = {"Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "LeakyRelu", "Tanh", "BatchNormalization",
           "Mul", "Add"}
COMPUTE = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
ELEM_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass
class LayerCost:
    name: str
    op: str
    kind: str  # conv | dwconv | gemm | elementwise | pool
    flops: float
    bytes: float
    precision: str  # fp32 | int8 (as the graph says; fp16 is a deployment choice)


def _shape_map(model: onnx.ModelProto) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def load_graph(source: str | Path | bytes | onnx.ModelProto, batch: int = 1) -> onnx.ModelProto:
    """The model with the batch axis fixed and all shapes inferred."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
    elif isinstance(source, bytes):
        model = onnx.load_from_string(source)
    else:
        model = onnx.load(str(source))
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dim0 = inp.type.tensor_type.shape.dim[0]
        dim0.Clear()
        dim0.dim_value = batch
    return shape_inference.infer_shapes(model)


def analyze(source: str | Path | bytes | onnx.ModelProto, batch: int = 1) -> list[LayerCost]:
    model = load_graph(source, batch)
    shapes = _shape_map(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    init_names = {i.name for i in model.graph.initializer}

    def numel(name: str) -> float:
        return float(np.prod(shapes.get(name, [0]))) if name else 0.0

    def is_int8(name: str) -> bool:
        p = producers.get(name)
        return p is not None and p.op_type == "DequantizeLinear"

    layers: list[LayerCost] = []
    for node in model.graph.node:
        op = node.op_type
        if op in FREE_OPS:
            continue
        ins = [i for i in node.input if i]
        out = node.output[0]
        if op in FUSABLE:
            src = producers.get(ins[0]) if ins else None
            side_inputs = [i for i in ins[1:] if i not in init_names]
            if src is not None and src.op_type in COMPUTE | FUSABLE and consumers.get(ins[0], 0) == 1:
                extra = sum(numel(i) for i in side_inputs) * 4  # a residual Add still reads its other input
                if extra and layers:
                    layers[-1].bytes += extra
                continue
        precision = "int8" if op in COMPUTE and ins and is_int8(ins[0]) else "fp32"
        eb = ELEM_BYTES[precision]
        io_bytes = (sum(numel(i) for i in ins) + numel(out)) * eb
        if op in ("Conv", "ConvTranspose"):
            w = shapes.get(ins[1], [])
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            group = int(attrs.get("group", 1))
            y = shapes.get(out, [])
            if op == "Conv":
                macs = float(np.prod(y)) * float(np.prod(w[1:])) if y and w else 0.0
            else:  # each input pixel scatters into kernel × output channels
                macs = numel(ins[0]) * float(np.prod(w[1:])) if w else 0.0
            cin = shapes.get(ins[0], [0, 0])[1]
            kind = "dwconv" if group > 1 and group == cin else "conv"
            layers.append(LayerCost(node.name or out, op, kind, 2 * macs, io_bytes, precision))
        elif op in ("Gemm", "MatMul"):
            a = shapes.get(ins[0], [])
            attrs = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            k = (a[-2] if attrs.get("transA") else a[-1]) if a else 0
            macs = numel(out) * k
            layers.append(LayerCost(node.name or out, op, "gemm", 2 * macs, io_bytes, precision))
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
            layers.append(LayerCost(node.name or out, op, "pool", numel(ins[0]), io_bytes, "fp32"))
        else:
            layers.append(LayerCost(node.name or out, op, "elementwise", numel(out), io_bytes, "fp32"))
    return layers


def weight_bytes(source: str | Path | onnx.ModelProto) -> int:
    model = source if isinstance(source, onnx.ModelProto) else onnx.load(str(source))
    return int(sum(numpy_helper.to_array(i).nbytes for i in model.graph.initializer))
