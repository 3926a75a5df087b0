"""The one table of model formats and the runtimes that run them.

In the spirit of Ultralytics' ``export_formats()``: each format names its file suffixes,
the runtimes that run it, the precisions it carries, whether it needs
a GPU, what it is built from and the module that registers its exporter. The export stage,
``edgekd bench``, the latency predictor, the profile validator and the registries all read
this table; adding a format is its exporter's file plus one row here (and a runtime, if
it needs a new one, its file plus one row in ``RUNTIMES``). The device kit keeps its own
copy (it imports nothing of edgekd); a test holds the two equal.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    name: str  # as in export.formats and exports.json
    suffixes: tuple[str, ...]  # file suffixes; () for an edgekd model folder
    runtimes: tuple[str, ...]  # runtimes that run it, preferred first
    precisions: tuple[str, ...]  # precisions a file of this format can hold
    needs_gpu: bool = False  # built and run only on a CUDA GPU (else built on the device)
    built_from: str | None = None  # converted from this format's file, not from PyTorch
    exporter: str | None = None  # module that registers its exporter; None: not an export format
    help: str = ""
    display: str = ""  # what people read: "ONNX file", "OpenVINO IR"


@dataclass(frozen=True)
class Runtime:
    name: str  # as in profiles' runtimes and bench.runtimes
    module: str  # module that registers its runtime class
    help: str = ""
    display: str = ""  # what people read: "ONNX Runtime"


FORMATS: tuple[Format, ...] = (
    Format("torch", (), ("torch",), ("fp32", "fp16", "int8"), help="edgekd model folder (PyTorch)",
           display="edgekd model folder"),
    Format("onnx", (".onnx",), ("onnxruntime",), ("fp32", "int8"), exporter="edgekd.engines.exporters.onnx",
           help="ONNX: FP32, INT8 as QuantizeLinear/DequantizeLinear", display="ONNX file"),
    Format("openvino", (".xml",), ("openvino",), ("fp32", "fp16", "int8"), built_from="onnx",
           exporter="edgekd.engines.exporters.openvino_ir", help="OpenVINO IR (.xml + .bin)", display="OpenVINO IR"),
    Format("tensorrt", (".engine", ".plan"), ("tensorrt",), ("fp16", "fp32", "int8"), needs_gpu=True,
           built_from="onnx", exporter="edgekd.engines.exporters.tensorrt", help="TensorRT engine", display="TensorRT engine"),
)

RUNTIMES: tuple[Runtime, ...] = (
    Runtime("torch", "edgekd.engines.runtimes.torch", "PyTorch eager on CPU; FP16 CUDA graph on a GPU", "PyTorch"),
    Runtime("onnxruntime", "edgekd.engines.runtimes.onnxruntime", "ONNX Runtime, CPU execution provider", "ONNX Runtime"),
    Runtime("openvino", "edgekd.engines.runtimes.openvino", "OpenVINO runtime, CPU plugin", "OpenVINO"),
    Runtime("tensorrt", "edgekd.engines.runtimes.tensorrt", "TensorRT, CUDA GPU with the tensorrt package", "TensorRT"),
)


def format_named(name: str) -> Format:
    for f in FORMATS:
        if f.name == name:
            return f
    raise KeyError(name)


def runtime_display(name: str) -> str:
    """A runtime's name for people (``ONNX Runtime``); an unknown name as it is."""
    return next((r.display for r in RUNTIMES if r.name == name and r.display), name)


def format_display(name: str) -> str:
    """A format's file kind for people (``OpenVINO IR``); an unknown format as ``<name> file``."""
    return next((f.display for f in FORMATS if f.name == name and f.display), f"{name} file")


def runtime_names() -> list[str]:
    return [r.name for r in RUNTIMES]


def export_format_names() -> list[str]:
    return [f.name for f in FORMATS if f.exporter]


def format_of_runtime(runtime: str) -> Format:
    """The format a runtime runs (each runtime here runs exactly one)."""
    for f in FORMATS:
        if runtime in f.runtimes:
            return f
    raise KeyError(runtime)


def format_of_path(path: Path) -> Format | None:
    """A model file's format from its suffix (a folder is an edgekd model); None if unknown."""
    if Path(path).is_dir():
        return format_named("torch")
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def model_suffixes() -> list[str]:
    return [s for f in FORMATS for s in f.suffixes]


def unknown_runtime_message(name: str) -> str | None:
    """None for a known runtime name, else the message with the usual "did you mean"."""
    names = runtime_names()
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=1)
    return (f"unknown runtime {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            + f" (known runtimes: {', '.join(names)})")

HOST_RUNTIMES = ("onnxruntime", "openvino")  # the runtimes a teacher is timed in on the host
