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

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from edgekd.core.errors import EdgeKDError, ExportError
from edgekd.core.rundir import atomic_path

if TYPE_CHECKING:
    import onnx

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


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, opset: int, *, max_opset: int | None = None,
                notes: list[str] | None = None) -> Path:
    """Write ``model`` to ``path`` (dynamic batch axis) and check it with ``onnx.checker``.

    The TorchScript exporter first (see above); where it cannot export a layer (e.g. an
    AdaptiveAvgPool2d whose output is not a factor of its input: VGG at 32 px), PyTorch's
    dynamo exporter, which may write a newer opset than asked: accepted up to ``max_opset``
    (the targets' runtimes' limit), and said in ``notes``.
    """
    model = model.eval().cpu()
    try:
        return _export_torchscript(model, example, Path(path), opset)
    except EdgeKDError:  # ours already say what failed (a full disk: RunDirError)
        raise
    except Exception as exc:  # exporter failures come in many types
        first = f"{_first_line(exc)}{_layers_named(model, exc)}"
    try:
        _export_dynamo(model, example, Path(path), opset)
    except EdgeKDError:
        raise
    except Exception as exc:
        raise ExportError(
            f"ONNX export to {path} failed (opset {opset}): {first}; the dynamo exporter failed too: {_first_line(exc)}",
            hint="try another opset (export.opset), keep the layer named above out of the model, or report it",
        ) from None
    written = onnx_opset(Path(path))
    if max_opset is not None and written > max_opset:
        Path(path).unlink(missing_ok=True)
        raise ExportError(f"ONNX export to {path}: {first}; the dynamo exporter wrote opset {written}, above the "
                          f"targets' limit {max_opset}", hint="change that layer, or leave out the target that "
                          "caps the opset (e.g. jetson-nano: 13)")
    if notes is not None:
        notes.append(f"dynamo exporter, opset {written} (the TorchScript exporter failed: {first})")
    return Path(path)


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> Path:
    import onnx

    # on an unsupported layer it prints the whole graph to stdout from C++: keep stdout clean (--json)
    with atomic_path(path) as tmp, warnings.catch_warnings(), _stdout_fd_silenced():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example.cpu(),), str(tmp), dynamo=False, opset_version=opset,
            input_names=[INPUT], output_names=[OUTPUT], do_constant_folding=True,
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        )
        onnx.checker.check_model(str(tmp), full_check=True)
    return path


@contextlib.contextmanager
def _stdout_fd_silenced() -> Iterator[None]:
    """File descriptor 1 to /dev/null (C++ writes bypass ``sys.stdout``), restored after."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _export_dynamo(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> Path:
    """torch.export-based exporter (needs onnxscript); its progress lines stay off stdout."""
    import onnx

    quiet = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [q.level for q in quiet]
    with atomic_path(path) as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for q in quiet:  # its failed down-conversion logs a traceback, then keeps the newer opset
            q.setLevel(logging.CRITICAL)
        try:
            torch.onnx.export(model, (example.cpu(),), str(tmp), dynamo=True, opset_version=opset,
                              input_names=[INPUT], output_names=[OUTPUT], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)
        finally:  # also when it fails: the loggers are the user's
            for q, level in zip(quiet, levels, strict=True):
                q.setLevel(level)
        onnx.checker.check_model(str(tmp), full_check=True)
    return path


def onnx_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].split("  [Caused by")[0].split(" Please feel free")[0] if text else ""
    return f"{type(exc).__name__}: {line}"


def _layers_named(model: nn.Module, exc: BaseException) -> str:
    """The layers of the operator an exporter error names (``operator adaptive_avg_pool2d`` →
    the model's AdaptiveAvgPool2d modules): its messages name the op, not the layer."""
    import re

    m = re.search(r"operator (?:aten::)?([a-z_0-9]+)", str(exc))
    if not m:
        return ""
    op = m.group(1).replace("_", "")
    hits = [n for n, mod in model.named_modules() if n and type(mod).__name__.lower() == op]
    return f" (layer {', '.join(hits[:4])}{' ...' if len(hits) > 4 else ''})" if hits else ""


def read_onnx(path: Path, error: type[EdgeKDError] = ExportError) -> onnx.ModelProto:
    """The graph of an ONNX file (weights not loaded); a file that does not parse is ``error``
    naming it, not protobuf's DecodeError."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
        if not model.graph.input or not model.graph.node:  # a cut-short file can parse as a partial graph
            raise ValueError("no graph inputs or nodes")
        onnx.checker.check_model(model)
        return model
    except Exception as exc:  # protobuf's DecodeError, onnx's own errors, OSError
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise error(f"{path} is not a readable ONNX model ({type(exc).__name__}: {first})",
                    hint="export it again; a copy cut short (an interrupted transfer or a full disk) reads like this"
                    ) from None


def fixed_batch(model: onnx.ModelProto) -> int | None:
    """The batch size the graph's first input is fixed at; None when the axis is dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
