"""Writing and checking ONNX files: export (TorchScript exporter), quantizer stripping,
refusal of vendor ops. Below both the exporters (which validate what this writes) and the
latency engine (which exports to time or predict a model), so neither imports the other.

Uses the TorchScript-based exporter (``dynamo=False``) on purpose: on torch 2.9–2.14 it
is ~10× faster than the dynamo exporter for these models, it honours the requested
opset (the dynamo path could not down-convert resnet18 to opset 17 here, and Jetson Nano's
TensorRT 8.2 needs ≤ 13), and NNCF's stripped fake-quantizers export through it as
Q/DQ pairs that ONNX Runtime, OpenVINO and TensorRT's explicit quantization consume.
A quantized model is first ``nncf.strip``-ed to native torch fake-quantizers: exporting
it as is would emit ``org.openvinotoolkit:FakeQuantize``, which ONNX Runtime refuses.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from edgekd.core.errors import EdgeKDError, ExportError
from edgekd.core.rundir import atomic_path

INPUT, OUTPUT = "input", "logits"


def strip_quantizers(model: nn.Module, example: torch.Tensor) -> nn.Module:
    import nncf

    return nncf.strip(model, do_copy=True, strip_format=nncf.StripFormat.NATIVE, example_input=example)


def _module_of(node_name: str) -> str:
    """The torch module a quantizer node belongs to: its name is the exporter's scope followed by
    NNCF's (module path with '/', then op name and call index), e.g.
    ``/blocks/blocks.0/.../blocks/0/0/ghost1/cheap_operation/2/relu_/0__0.0/FakeQuantize``."""
    segs = node_name.strip("/").split("/")
    if segs and segs[0] in segs[1:]:
        start = segs.index(segs[0], 1)
        return ".".join(segs[start:-3]) or node_name
    return node_name


def refuse_vendor_ops(path: Path) -> None:
    """Fail, naming the layers, when NNCF's strip left FakeQuantize nodes in the graph.

    Seen with timm's GhostNet: NNCF shares one quantizer between the ReLU outputs that meet
    in a Concat, and ``nncf.strip`` keeps such shared quantizers as
    ``org.openvinotoolkit:FakeQuantize``, which ONNX Runtime cannot load and TensorRT rejects.
    """
    import onnx

    vendor = [n for n in onnx.load(str(path), load_external_data=False).graph.node
              if n.domain == "org.openvinotoolkit" or n.op_type == "FakeQuantize"]
    if vendor:
        names = sorted({_module_of(n.name) if n.name else n.output[0] for n in vendor})
        raise ExportError(
            f"the INT8 ONNX export {path.name} has {len(vendor)} non-standard quantizer node(s) "
            f"({vendor[0].domain}:{vendor[0].op_type}, after {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}) "
            "that ONNX Runtime and TensorRT cannot run",
            hint="NNCF keeps quantizers shared by a Concat's inputs as FakeQuantize (ignoring those layers did not "
                 "remove them for GhostNet); deploy this model's INT8 through OpenVINO (targets host/intel-x86-cpu), "
                 "deploy it in FP32/FP16 (drop 'quantize' from stages), or choose a student without such blocks")


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> Path:
    """Write ``model`` to ``path`` (dynamic batch axis) and check it with ``onnx.checker``."""
    import onnx

    model = model.eval().cpu()
    try:
        with atomic_path(Path(path)) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example.cpu(),), str(tmp), dynamo=False, opset_version=opset,
                input_names=[INPUT], output_names=[OUTPUT], do_constant_folding=True,
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            )
            onnx.checker.check_model(str(tmp), full_check=True)
    except EdgeKDError:  # ours already say what failed (a full disk: RunDirError)
        raise
    except Exception as exc:  # exporter failures come in many types
        raise ExportError(
            f"ONNX export to {path} failed (opset {opset}): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="try another opset (export.opset), or report the layer named above",
        ) from None
    return Path(path)
