"""Transformer and ConvNeXt operators in the cost model: what ONNX Runtime really runs.

Each rule was read off the graph ONNX Runtime 1.32 (CPU provider, ORT_ENABLE_ALL) runs for
edgekd's exports of timm ViT, DeiT, Swin and ConvNeXt (opset 17, dynamic batch axis), as
``SessionOptions.optimized_model_filepath`` writes it, and for small MLP/LayerNorm graphs at
opsets 13, 17 and 20 (ORT's documented fusions: GELU, BiasGelu, LayerNorm, FusedMatMul;
its Attention fusion matches BERT's subgraph, not timm's, and fuses nothing here):

- **LayerNormalization** runs as one kernel: kind ``norm``, 8 FLOPs an element (sum;
  subtract, square, sum; normalise; scale and shift). At opsets below 17 the exporter writes
  ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div (Mul, Add): ORT's LayerNormFusion makes that
  one LayerNormalization again, so the chain is one ``norm`` layer.
- **Softmax** runs as one kernel: kind ``softmax``, max, subtract, exp, sum and scale an element.
- **GELU** (the exporter's Div, Erf, Add, Mul, Mul below opset 20, or Gelu) is one ``gelu``
  layer: ORT fuses the chain into Gelu, and a bias Add before it into BiasGelu, but never into
  the MatMul or Conv before it (its conv activation fusion takes Relu, Clip, Sigmoid, ... only):
  GELU reads and writes every element on its own. The tanh form's decomposition (Mul, Pow,
  Tanh, ...) is *not* fused by ORT below opset 20, so its nodes stay element-wise layers.
- **MatMul of two activations** (attention's q·kᵀ and attn·v, batched over heads): kind
  ``attention``, no weight bytes; small inner dimensions (the head size) give it its own
  efficiency. A Transpose of the last two axes, or a Mul by a constant scalar, read only by
  such a MatMul is folded into it (ORT's FusedMatMul: Swin's scaled q and kᵀ); timm's ViT
  scales q and k by a factor computed from a Shape at run time, which ORT cannot fold.
- **Transpose** moves every element: a ``copy`` layer (ConvNeXt's channels-last LayerNorm sits
  between two; ORT turns them into NCHWc reorders, which copy as much).
- **A bias or residual Add after a MatMul on 3-D tokens** is a layer of its own: ORT's
  MatMul+Add fusion (to Gemm) takes 2-D inputs only, and with the dynamic batch axis the
  tokens stay 3-D (a ViT runs 21 Adds, all it has).
- **Shape arithmetic** (tensors computed from Shape outputs and constants only: Swin's window
  padding, timm's attention scale) is free, as the CNN rules already treat it. It is not free
  in ORT with a dynamic batch axis: a Swin with ~440 such nodes ran 1.81 ms against 1.49 ms
  with the batch fixed (~0.75 us a node), but a profile has no launch cost of its own for it.

Rows of a row-wise op (Softmax, LayerNorm) shorter than 32 KiB stay in L1 between the
kernel's passes, so its memory traffic is one read and one write; a longer row is read twice.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# onnx_graph._Graph: the analysed graph (shapes, producers, readers). Named loosely: onnx_graph
# imports this module, and the import graph stays one-way.
_Graph = Any

# FLOPs an element, a transcendental counted as the polynomial a vectorised kernel evaluates
EXP_FLOPS = 10  # range reduction and a degree-5 polynomial (MLAS, oneDNN)
ERF_FLOPS = 16  # a rational approximation
SOFTMAX_FLOPS = 4 + EXP_FLOPS  # max, subtract, exp, sum, scale
LAYERNORM_FLOPS = 8
GELU_FLOPS = 4 + ERF_FLOPS  # x/sqrt(2), erf, +1, times x, times 0.5
ROW_IN_CACHE_BYTES = 32 << 10
SHAPE_SOURCES = {"Shape", "Size"}


class OpCost(NamedTuple):
    kind: str
    flops: float
    bytes: float
    weight_bytes: float = 0.0


class Group(NamedTuple):
    """Several nodes a runtime runs as one kernel: costed once, at ``head`` (the last node)."""

    head: onnx.NodeProto
    nodes: list[onnx.NodeProto]
    cost: OpCost


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shapes of every tensor; where onnx's inference (with data propagation, so reshapes to
    shapes computed from Shape nodes resolve) leaves a dimension unknown (Swin's padding to
    whole windows), one ONNX Runtime run at the fixed input shapes says what it is."""
    model = shape_inference.infer_shapes(model, data_prop=True)
    known = {vi.name for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]
             if vi.type.tensor_type.HasField("shape")
             and all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)}
    if all(o in known for n in model.graph.node for o in n.output if o):
        return model
    return _shapes_from_a_run(model) or model


def _shapes_from_a_run(model: onnx.ModelProto) -> onnx.ModelProto | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inits = {i.name for i in probe.graph.initializer}
    types = {vi.name: vi.type.tensor_type.elem_type for vi in [*probe.graph.value_info, *probe.graph.output]}
    outputs = {o.name for o in probe.graph.output}
    for n in probe.graph.node:
        for o in n.output:
            if o and o not in outputs and types.get(o):
                probe.graph.output.append(helper.make_tensor_value_info(o, types[o], None))
                outputs.add(o)
    feeds = {}
    for inp in probe.graph.input:
        if inp.name in inits:
            continue
        dtype = helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        feeds[inp.name] = np.zeros([max(d.dim_value, 1) for d in inp.type.tensor_type.shape.dim], dtype)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        values = sess.run(names, feeds)
    except Exception:  # noqa: BLE001 - ORT raises its own types; the inferred shapes stand
        return None
    skip = {o.name for o in model.graph.output} | inits
    found = {name: np.asarray(v) for name, v in zip(names, values, strict=True) if name not in skip}
    kept = [vi for vi in model.graph.value_info if vi.name not in found]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    model.graph.value_info.extend(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype),
                                                                list(v.shape)) for name, v in found.items())
    return model


def _const_value(g: _Graph, name: str) -> np.ndarray | None:
    """The value of an initializer or Constant output, else None."""
    for init in g.model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    p = g.producers.get(name)
    if p is not None and p.op_type == "Constant" and p.attribute:
        return numpy_helper.to_array(p.attribute[0].t) if p.attribute[0].HasField("t") else None
    return None


def _sole_reader(g: _Graph, name: str, op: str | tuple[str, ...]) -> onnx.NodeProto | None:
    users = g.users.get(name, [])
    ops = (op,) if isinstance(op, str) else op
    return users[0] if len(users) == 1 and users[0].op_type in ops else None


def _other(node: onnx.NodeProto, name: str) -> str:
    """The operand of a binary node that is not ``name``."""
    return node.input[1] if node.input[0] == name else node.input[0]


def _bias_add(g: _Graph, x: str, readers: int) -> onnx.NodeProto | None:
    """An Add of a constant bias producing ``x``, read only by the fused op: BiasGelu takes it."""
    p = g.producers.get(x)
    if p is None or p.op_type != "Add" or len(g.users.get(x, [])) != readers:
        return None
    consts = [i for i in p.input if g.constant(i)]
    return p if len(consts) == 1 and len(g.shapes.get(consts[0], [])) == 1 else None


def _row_cost(g: _Graph, x: str, out: str, axis: int, per_element: float, kind: str, weights: float = 0.0) -> OpCost:
    shape = g.shapes.get(x, [])
    n = g.numel(x)
    row = float(np.prod(shape[axis:])) if shape else n
    passes = 1 if row * 4 <= ROW_IN_CACHE_BYTES else 2
    return OpCost(kind, per_element * n, (passes * n + g.numel(out) + weights) * 4, weights * 4)


def _gelu(g: _Graph, erf: onnx.NodeProto) -> Group | None:
    """x → Div(√2)|Mul(1/√2) → Erf → Add(1) → Mul(x) → Mul(0.5), in any operand order."""
    pre = g.producers.get(erf.input[0])
    if pre is None or pre.op_type not in ("Div", "Mul") or not g.constant(pre.input[1]):
        return None
    x = pre.input[0]
    add = _sole_reader(g, erf.output[0], "Add")
    if add is None or not g.constant(_other(add, erf.output[0])) or len(g.users.get(pre.output[0], [])) != 1:
        return None
    nodes, last, used_x = [pre, erf, add], add.output[0], False
    for _ in range(2):
        mul = _sole_reader(g, last, "Mul")
        if mul is None:
            break
        operand = _other(mul, last)
        if operand == x and not used_x:
            used_x = True
        elif not g.constant(operand):
            break
        nodes.append(mul)
        last = mul.output[0]
    if not used_x or len(nodes) != 5 or len(g.users.get(x, [])) != 2:
        return None
    return _gelu_group(g, nodes, x, last)


def _gelu_group(g: _Graph, nodes: list[onnx.NodeProto], x: str, out: str) -> Group:
    n = g.numel(out)
    bias = _bias_add(g, x, len([u for u in g.users.get(x, []) if u in nodes]))
    read, extra = g.numel(x), 0.0
    if bias is not None:
        nodes = [bias, *nodes]
        extra = g.numel(next(i for i in bias.input if g.constant(i)))
        read = g.numel(next(i for i in bias.input if not g.constant(i)))
    return Group(nodes[-1], nodes, OpCost("gelu", GELU_FLOPS * n + (n if bias is not None else 0.0),
                                          (read + n + extra) * 4, extra * 4))


def _layernorm(g: _Graph, mean: onnx.NodeProto) -> Group | None:
    """ReduceMean → Sub → Pow(2) → ReduceMean → Add(eps) → Sqrt → Div (→ Mul(γ) → Add(β))."""
    x = mean.input[0]
    sub = next((u for u in g.users.get(mean.output[0], [])
                if u.op_type == "Sub" and list(u.input) == [x, mean.output[0]]), None)
    if sub is None or len(g.users.get(mean.output[0], [])) != 1:
        return None
    d = sub.output[0]
    sq = next((u for u in g.users.get(d, [])
               if u.op_type == "Pow" or (u.op_type == "Mul" and u.input[0] == u.input[1])), None)
    if sq is None:
        return None
    var = _sole_reader(g, sq.output[0], "ReduceMean")
    eps = _sole_reader(g, var.output[0], "Add") if var is not None else None
    root = _sole_reader(g, eps.output[0], "Sqrt") if eps is not None else None
    div = _sole_reader(g, root.output[0], "Div") if root is not None else None
    if div is None or div.input[0] != d or len(g.users.get(d, [])) != 2:
        return None
    nodes, last, weights = [mean, sub, sq, var, eps, root, div], div.output[0], 0.0
    for op in ("Mul", "Add"):
        nxt = _sole_reader(g, last, op)
        if nxt is None or not g.constant(_other(nxt, last)):
            break
        nodes.append(nxt)
        weights += g.numel(_other(nxt, last))
        last = nxt.output[0]
    axes = _reduce_axes(g, mean)
    axis = min(axes) if axes else -1
    return Group(nodes[-1], nodes, _row_cost(g, x, last, axis, LAYERNORM_FLOPS, "norm", weights))


def _reduce_axes(g: _Graph, node: onnx.NodeProto) -> list[int]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if "axes" in attrs:
        return list(attrs["axes"])
    value = _const_value(g, node.input[1]) if len(node.input) > 1 and node.input[1] else None
    return [int(v) for v in np.ravel(value)] if value is not None else []


def fused_groups(g: _Graph) -> dict[int, Group]:
    """Every multi-node pattern that runs as one kernel, by the id of each of its nodes."""
    groups: dict[int, Group] = {}
    for node in g.model.graph.node:
        if id(node) in groups or id(node) in g.integer:
            continue
        group = None
        if node.op_type == "Erf":
            group = _gelu(g, node)
        elif node.op_type == "Gelu":
            group = _gelu_group(g, [node], node.input[0], node.output[0])
        elif node.op_type == "ReduceMean":
            group = _layernorm(g, node)
        if group is not None and not any(id(n) in groups for n in group.nodes):
            groups.update({id(n): group for n in group.nodes})
    return groups


def row_op_cost(g: _Graph, node: onnx.NodeProto) -> OpCost | None:
    """Softmax and LayerNormalization, one kernel each."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    x, out = node.input[0], node.output[0]
    if node.op_type in ("Softmax", "LogSoftmax"):
        return _row_cost(g, x, out, int(attrs.get("axis", -1)), SOFTMAX_FLOPS, "softmax")
    if node.op_type == "LayerNormalization":
        weights = sum(g.numel(i) for i in node.input[1:] if i)
        return _row_cost(g, x, out, int(attrs.get("axis", -1)), LAYERNORM_FLOPS, "norm", weights)
    return None


def folded_into_matmul(g: _Graph, node: onnx.NodeProto) -> bool:
    """A Transpose of the last two axes, or a Mul by a constant scalar, read only by an
    activation-by-activation MatMul: ORT's FusedMatMul takes it (transB, alpha)."""
    mm = _sole_reader(g, node.output[0], "MatMul")
    if mm is None or any(g.constant(i) for i in mm.input):
        return False
    if node.op_type == "Transpose":
        perm = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"), [])
        rank = len(perm)
        return rank >= 2 and perm == [*range(rank - 2), rank - 1, rank - 2]
    if node.op_type == "Mul":
        scalars = [i for i in node.input if g.constant(i) and g.numel(i) == 1]
        return len(scalars) == 1
    return False


def transpose_cost(g: _Graph, node: onnx.NodeProto) -> OpCost:
    moved = g.numel(node.output[0])
    return OpCost("copy", moved, 2 * moved * 4)


def after_token_matmul(g: _Graph, src: onnx.NodeProto | None) -> bool:
    """``src`` is a MatMul on 3-D or larger tokens: ORT's MatMul+Add fusion (to Gemm) takes 2-D
    inputs only, so an Add after it runs as its own kernel."""
    return src is not None and src.op_type == "MatMul" and len(g.shapes.get(src.output[0], [])) >= 3
