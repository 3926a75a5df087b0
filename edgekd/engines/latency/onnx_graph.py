"""Per-layer cost of an ONNX graph: FLOPs and bytes moved, the roofline model's input.

Why hand-written: onnx's shape inference gives the tensor shapes, but no maintained
library turns an ONNX graph into per-layer FLOPs *and* bytes with the precision each
layer runs in (INT8 where a Conv reads DequantizeLinear outputs). The rules here are
small and tested: Conv/ConvTranspose/Gemm/MatMul are compute layers; activations that
directly follow a compute layer are fused into it (as every runtime does); layout ops
and shape arithmetic are free; copies (Concat, Slice, Split, Transpose) and everything else
are memory-bound layers. Transformer operators (LayerNorm, Softmax, GELU, attention's
MatMuls) follow what ONNX Runtime fuses and runs for them: onnx_ops.py says which and why.

INT8 follows the explicit-quantization fusion rule of ONNX Runtime (and TensorRT): a
compute layer runs in INT8 only when its input and weights come from DequantizeLinear and
its output (after an optional ReLU/Clip) goes only to QuantizeLinear; those Q/DQ nodes
are absorbed. The same holds for the element-wise ops with integer kernels (ONNX
Runtime's QLinearAdd/Mul/AveragePool/..., int8 MaxPool): DQ in, Q out, one byte per
element. A QuantizeLinear of a constant (NNCF's FP32 weights) is folded when the model
loads and costs nothing. Any other Q/DQ node really runs, as a memory-bound layer, and
the compute layer stays float. Why both rules: a MobileNetV3 whose quantizers sit after
HardSwish runs most of its convolutions in float in ONNX Runtime, INT8 slower than FP32
(benchmarks/RESULTS.md, "MobileNetV3 INT8 in ONNX Runtime"); and counting the weights'
QuantizeLinear as work would predict INT8 ResNets at several times their measured time
(benchmarks/RESULTS.md, "What each part of the cost model buys").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgekd.engines.latency import onnx_ops

FREE_OPS = {"Identity", "Shape", "Constant", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gather",
            "Cast", "ConstantOfShape"}
# Ops that only move data. Not free on a CPU: they read and write every byte (GhostNet's
# Slice/Concat pairs took a fifth of its node time in ONNX Runtime); shape arithmetic on
# integer vectors is folded at load and stays free.
COPY_OPS = {"Concat", "Slice", "Split"}
QDQ = {"QuantizeLinear", "DequantizeLinear"}
OUTPUT_ACTS = {"Relu", "Clip"}  # fused between an integer conv and its output quantizer
FUSABLE = {"Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "LeakyRelu", "Tanh", "BatchNormalization",
           "Mul", "Add"}
COMPUTE = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
INTEGER_ELEMENTWISE = {"Add", "Mul", "AveragePool", "GlobalAveragePool", "Sigmoid", "LeakyRelu"}
# Ops a dequantized tensor passes through unchanged in order: runtimes move the DQ after them
# (ONNX Runtime's QDQ propagation), so what follows still reads INT8. NNCF leaves MaxPool's
# output unquantized for this reason.
PASS_THROUGH = {"MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Identity"}
ELEM_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass
class LayerCost:
    name: str
    op: str
    # conv | dwconv (depthwise) | gconv (grouped) | gemm | attention (activation x activation
    # MatMul) | norm | softmax | gelu | elementwise | pool | copy
    kind: str
    flops: float
    bytes: float
    precision: str  # fp32 | int8 (as the graph says; fp16 is a deployment choice)
    weight_bytes: float = 0.0  # the constant part of ``bytes`` (weights): read-only streams


def _integer_tensors(model: onnx.ModelProto) -> set[str]:
    """Tensors of integer type: shapes, indices (what a runtime computes once, at load)."""
    ints = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
    return {vi.name for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]
            if vi.type.tensor_type.elem_type in ints}


def _shape_map(model: onnx.ModelProto) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def load_graph(source: str | Path | bytes | onnx.ModelProto, batch: int = 1) -> onnx.ModelProto:
    """The model with the batch axis fixed and all shapes inferred (onnx_ops.infer_shapes)."""
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
    return onnx_ops.infer_shapes(model)


def unread_taps(x: list[int], w: list[int], attrs: dict) -> float:
    """The fraction of a Conv's kernel taps that no output reads: they meet only padding.

    Why it matters: on small feature maps most of a 3x3 kernel hangs over the border (at
    1x1, 8 of 9 taps), and CPU direct convolutions (ONNX Runtime's MLAS, oneDNN) never read
    those weights. A ResNet-18 at 32 px ran in 1.1 ms on a 2-core VM, about half the time
    all 43 MiB of its weights take to stream from memory there: its last stage reads only
    the centre tap. Their multiply-adds stay counted: skipping them as well fitted no
    better (cross-validated median error 12.4% vs 11.9%), small maps being memory-bound.
    """
    spatial = len(w) - 2
    pads = list(attrs.get("pads", [0] * 2 * spatial))
    auto = attrs.get("auto_pad", b"NOTSET")
    if spatial < 1 or len(x) != spatial + 2 or auto not in (b"NOTSET", "NOTSET") or not any(pads):
        return 0.0
    strides, dilations = attrs.get("strides", [1] * spatial), attrs.get("dilations", [1] * spatial)
    used = 1.0
    for d in range(spatial):
        size, k, stride, dil, before = x[2 + d], w[2 + d], strides[d], dilations[d], pads[d]
        out = (size + before + pads[spatial + d] - dil * (k - 1) - 1) // stride + 1
        used *= sum(any(0 <= o * stride - before + t * dil < size for o in range(max(out, 0))) for t in range(k)) / k
    return 1.0 - used


class _Graph:
    """An ONNX graph with the lookups the cost model needs: shapes, producers, readers, and
    which layers a runtime runs in integer arithmetic (the Q/DQ patterns it fuses)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.shapes = _shape_map(model)
        self.producers = {o: n for n in model.graph.node for o in n.output}
        self.users: dict[str, list[onnx.NodeProto]] = {}  # tensor name -> the nodes that read it
        for n in model.graph.node:
            for i in n.input:
                self.users.setdefault(i, []).append(n)
        self.init_names = {i.name for i in model.graph.initializer}
        self.integer_tensors = _integer_tensors(model)
        self._constant: dict[str, bool] = {}
        self.integer = self._integer_layers()
        self._shape_tensors: set[str] = set()  # nodes come in topological order (ONNX requires it)
        for n in model.graph.node:
            if n.op_type in onnx_ops.SHAPE_SOURCES or all(self.shape_derived(i) for i in n.input if i):
                self._shape_tensors.update(o for o in n.output if o)

    def numel(self, name: str) -> float:
        return float(np.prod(self.shapes.get(name, [0]))) if name else 0.0

    def constant(self, name: str) -> bool:
        """An initializer, or computed from initializers only (folded when the model loads)."""
        if name not in self._constant:
            self._constant[name] = False  # placeholder while this name's inputs are looked at
            p = self.producers.get(name)
            self._constant[name] = name in self.init_names or (p is not None and (p.op_type == "Constant" or (
                p.op_type in FREE_OPS | COPY_OPS | QDQ | {"Transpose"}
                and all(self.constant(i) for i in p.input if i))))
        return self._constant[name]

    def shape_derived(self, name: str) -> bool:
        """Computed from Shape outputs and constants only: shape arithmetic, no tensor data."""
        return name in self._shape_tensors or self.constant(name)

    def source_dq(self, name: str) -> onnx.NodeProto | None:
        """The DequantizeLinear a tensor comes from, looking through ops runtimes move DQs across."""
        p = self.producers.get(name)
        while p is not None and p.op_type in PASS_THROUGH:
            p = self.producers.get(p.input[0])
        return p if p is not None and p.op_type == "DequantizeLinear" else None

    def per_tensor_dq(self, name: str) -> bool:
        """From a DQ with one scale: integer kernels take no per-channel activation scales, in
        or out (NNCF quantizes depthwise inputs per channel; ONNX Runtime keeps the convs on
        both sides of such a quantizer float)."""
        dq = self.source_dq(name)
        return dq is not None and len(dq.input) > 1 and self.numel(dq.input[1]) <= 1

    def quantized_output(self, name: str) -> bool:
        after = self.users.get(name, [])
        if len(after) == 1 and after[0].op_type in OUTPUT_ACTS:
            after = self.users.get(after[0].output[0], [])
        return bool(after) and all(u.op_type == "QuantizeLinear" and self.numel(u.input[1]) <= 1 for u in after)

    def _integer_layers(self) -> set[int]:
        nodes = self.model.graph.node
        integer = {id(n) for n in nodes if n.op_type in COMPUTE and len(n.input) > 1
                   and self.per_tensor_dq(n.input[0]) and self.source_dq(n.input[1]) is not None
                   and self.quantized_output(n.output[0])}
        # ONNX Runtime's QLinear element-wise kernels need every input from a DQ (an initializer
        # operand keeps the op float)
        integer |= {id(n) for n in nodes if n.op_type in INTEGER_ELEMENTWISE
                    and all(self.per_tensor_dq(i) for i in n.input if i) and self.quantized_output(n.output[0])}
        integer |= {id(n) for n in nodes if n.op_type == "MaxPool" and self.per_tensor_dq(n.input[0])}
        return integer

    def consumed_as_integer(self, name: str) -> bool:
        """Every reader of ``name`` is an integer layer, looking through pass-through ops."""
        after = self.users.get(name, [])
        return bool(after) and all(id(u) in self.integer or (u.op_type in PASS_THROUGH and u.op_type != "MaxPool"
                                                             and self.consumed_as_integer(u.output[0]))
                                   for u in after)

    def absorbed(self, node: onnx.NodeProto) -> bool:
        """Whether a Q/DQ node disappears into integer compute layers."""
        if node.op_type == "DequantizeLinear":
            return self.consumed_as_integer(node.output[0])
        src = self.producers.get(node.input[0])
        if src is not None and src.op_type in OUTPUT_ACTS:
            src = self.producers.get(src.input[0])
        return src is not None and id(src) in self.integer


def analyze(source: str | Path | bytes | onnx.ModelProto, batch: int = 1) -> list[LayerCost]:
    """The cost of every layer a runtime runs, in graph order (free, folded, fused ops skipped)."""
    g = _Graph(load_graph(source, batch))
    groups = onnx_ops.fused_groups(g)
    layers: list[LayerCost] = []
    for node in g.model.graph.node:
        op = node.op_type
        if id(node) in groups:
            group = groups[id(node)]
            if node is group.head:
                layers.append(_from_op_cost(node, _group_op(group), group.cost))
            continue
        if op in FREE_OPS or (op not in QDQ and all(g.shape_derived(o) for o in node.output if o)):
            continue
        if op in ("Transpose", "Mul") and onnx_ops.folded_into_matmul(g, node):
            continue
        if op == "Transpose":
            layers.append(_from_op_cost(node, op, onnx_ops.transpose_cost(g, node)))
            continue
        row = onnx_ops.row_op_cost(g, node)
        if row is not None and id(node) not in g.integer:
            layers.append(_from_op_cost(node, op, row))
            continue
        if op in COPY_OPS:
            outs = [o for o in node.output if o]
            if not (g.constant(outs[0]) or outs[0] in g.integer_tensors):
                moved = sum(g.numel(o) for o in outs)  # read once, written once
                layers.append(LayerCost(node.name or outs[0], op, "copy", moved, 2 * moved * 4, "fp32"))
            continue
        if op in QDQ:
            folded = op == "QuantizeLinear" and g.constant(node.input[0])
            if not folded and not g.absorbed(node):  # runs: reads one precision, writes the other
                n_el = g.numel(node.input[0])
                layers.append(LayerCost(node.name or node.output[0], op, "elementwise", n_el, n_el * 5, "fp32"))
            continue
        if _fused_into_previous(g, node, layers):
            continue
        layers.append(_compute_cost(g, node))
    return layers


def _fused_into_previous(g: _Graph, node: onnx.NodeProto, layers: list[LayerCost]) -> bool:
    """An activation or residual Add that runs inside the layer before it (its only reader)."""
    ins = [i for i in node.input if i]
    if node.op_type not in FUSABLE or id(node) in g.integer:
        return False
    src = g.producers.get(ins[0]) if ins else None
    if src is None or src.op_type not in COMPUTE | FUSABLE or len(g.users.get(ins[0], [])) != 1:
        return False
    if onnx_ops.after_token_matmul(g, src):
        return False
    extra = sum(g.numel(i) for i in ins[1:] if i not in g.init_names) * 4  # a residual Add still reads its other input
    if extra and layers:
        layers[-1].bytes += extra
    return True


def _compute_cost(g: _Graph, node: onnx.NodeProto) -> LayerCost:
    op = node.op_type
    ins = [i for i in node.input if i]
    out = node.output[0]
    precision = "int8" if id(node) in g.integer else "fp32"
    eb = ELEM_BYTES[precision]
    io_bytes = (sum(g.numel(i) for i in ins) + g.numel(out)) * eb
    w_bytes = sum(g.numel(i) for i in ins[1:] if g.constant(i)) * eb
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if op in ("Conv", "ConvTranspose"):
        w = g.shapes.get(ins[1], [])
        group = int(attrs.get("group", 1))
        y = g.shapes.get(out, [])
        if op == "Conv":
            macs = float(np.prod(y)) * float(np.prod(w[1:])) if y and w else 0.0
        else:  # each input pixel scatters into kernel × output channels
            macs = g.numel(ins[0]) * float(np.prod(w[1:])) if w else 0.0
        cin = g.shapes.get(ins[0], [0, 0])[1]
        kind = "conv" if group == 1 else "dwconv" if group == cin else "gconv"  # grouped: own efficiency
        unread = g.numel(ins[1]) * eb * (unread_taps(g.shapes.get(ins[0], []), w, attrs) if op == "Conv" else 0.0)
        return LayerCost(node.name or out, op, kind, 2 * macs, io_bytes - unread, precision, w_bytes - unread)
    if op in ("Gemm", "MatMul"):
        a = g.shapes.get(ins[0], [])
        k = (a[-2] if attrs.get("transA") else a[-1]) if a else 0
        # attention's q·kᵀ and attn·v: two activations, batched over heads, no weights
        kind = "attention" if op == "MatMul" and not any(g.shape_derived(i) for i in ins) else "gemm"
        return LayerCost(node.name or out, op, kind, 2 * g.numel(out) * k, io_bytes, precision, w_bytes)
    if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
        return LayerCost(node.name or out, op, "pool", g.numel(ins[0]), io_bytes, precision)
    return LayerCost(node.name or out, op, "elementwise", g.numel(out), io_bytes, precision)


def _from_op_cost(node: onnx.NodeProto, op: str, c: onnx_ops.OpCost) -> LayerCost:
    return LayerCost(node.name or node.output[0], op, c.kind, c.flops, c.bytes, "fp32", c.weight_bytes)


def _group_op(group: onnx_ops.Group) -> str:
    """The operator a runtime runs for a fused group: BiasGelu, Gelu, LayerNormalization."""
    if group.cost.kind == "gelu":
        return "BiasGelu" if group.nodes[0].op_type == "Add" else "Gelu"
    return "LayerNormalization"


def weight_bytes(source: str | Path | onnx.ModelProto) -> int:
    model = source if isinstance(source, onnx.ModelProto) else onnx.load(str(source))
    return int(sum(numpy_helper.to_array(i).nbytes for i in model.graph.initializer))
