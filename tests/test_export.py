"""ONNX export matches PyTorch on real inputs; a broken export fails with both numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import export_plan

from edgekd.core.config import DataConfig, ExportConfig
from edgekd.core.errors import ExportError
from edgekd.engines.data import load_data
from edgekd.engines.exporters.base import ExportJob, validate
from edgekd.engines.exporters.onnx import OnnxExporter
from edgekd.engines.models.artifact import ModelSpec
from edgekd.engines.models.build import build_model
from edgekd.engines.runtimes.base import Runner
from edgekd.engines.train.evaluate import accuracy, predict_logits


@pytest.fixture(scope="module")
def job_parts():
    data = load_data(DataConfig(source="digits", image_size=16))
    model = build_model("mobilenetv3_small_050", 10).eval()
    ref = predict_logits(model, data, torch.device("cpu"), limit=200)
    spec = ModelSpec("mobilenetv3_small_050", 10, {}, data.preprocessing())
    return data, model, spec, ref


def test_onnx_export_parity(job_parts, tmp_path: Path) -> None:
    data, model, spec, ref = job_parts
    job = ExportJob("student", model, spec, data, tmp_path, ExportConfig(opset=13), export_plan(ExportConfig(opset=13)), ref)
    (rec,) = OnnxExporter().export(job)
    assert rec.path.exists() and rec.precision == "fp32"
    m = onnx.load(str(rec.path))
    assert m.opset_import[0].version == 13
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch
    assert rec.parity["max_abs_diff"] < 1e-4 and rec.parity["top1_agreement"] == 1.0
    assert rec.parity["accuracy"] == rec.parity["torch_accuracy"]


def test_broken_export_is_caught(job_parts, tmp_path: Path) -> None:
    data, model, spec, ref = job_parts
    job = ExportJob("student", model, spec, data, tmp_path, ExportConfig(), export_plan(ExportConfig()), ref)
    shuffled = Runner(lambda x: np.roll(ref.numpy()[: x.shape[0]], 1, axis=1), "fake", "0", "cpu", "fp32", 1)
    with pytest.raises(ExportError, match=r"(?s)disagrees with PyTorch.*accuracy .* vs .*PyTorch"):
        validate(shuffled, job, what="broken.onnx", precision="fp32")
    slightly_off = Runner(lambda x: ref.numpy()[: x.shape[0]] + 1e-2, "fake", "0", "cpu", "fp32", 1)
    with pytest.raises(ExportError, match="max \\|diff\\|"):
        validate(slightly_off, job, what="off.onnx", precision="fp32")


def test_int8_export_with_vendor_quantizers_is_refused_by_name(tmp_path: Path) -> None:
    """NNCF leaves shared quantizers (GhostNet's Concat inputs) as org.openvinotoolkit:FakeQuantize,
    which ONNX Runtime cannot load: the export names the layers instead of failing inside ORT."""
    from onnx import TensorProto, helper

    from edgekd.engines.exporters.onnx_io import refuse_vendor_ops

    name = "/blocks/blocks.0/blocks.0.0/ghost1/cheap_operation/cheap_operation.2/blocks/0/0/ghost1/cheap_operation/2/relu_/0__0.0/FakeQuantize"
    node = helper.make_node("FakeQuantize", ["x", "lo", "hi", "lo", "hi"], ["y"], name=name, domain="org.openvinotoolkit",
                            levels=256)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("org.openvinotoolkit", 1)])
    path = tmp_path / "q.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match=r"1 non-standard quantizer node.*FakeQuantize, after blocks\.0\.0\.ghost1\.cheap_operation\.2\)") as err:
        refuse_vendor_ops(path)
    assert "OpenVINO" in err.value.hint
    clean = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", graph.input, graph.output))
    onnx.save(clean, str(path))
    refuse_vendor_ops(path)  # standard ops pass


def test_openvino_runner_leaves_the_signal_stack_as_it_was(tmp_path: Path) -> None:
    """OpenVINO's compile_model installs an alternate signal stack it later frees; left in place,
    Ctrl-C (or DataLoader's SIGCHLD handler) after the bench stage killed edgekd with SIGSEGV."""
    import ctypes
    import sys

    from edgekd.core.signal_stack import _StackT
    from edgekd.engines.runtimes.openvino import OpenVINORuntime

    if not sys.platform.startswith("linux"):
        pytest.skip("sigaltstack checked on Linux")
    libc = ctypes.CDLL(None)

    def stack() -> tuple[int, int]:
        s = _StackT()
        libc.sigaltstack(None, ctypes.byref(s))
        return (s.ss_sp or 0, s.ss_flags)

    model = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 8, 8, 8]}).eval()
    torch.onnx.export(model, torch.randn(1, 3, 16, 16), tmp_path / "m.onnx", input_names=["input"], dynamo=False)
    before = stack()
    runner = OpenVINORuntime().load(tmp_path / "m.onnx", precision="fp32", threads=2)
    runner.run(np.zeros((1, 3, 16, 16), np.float32))
    assert stack() == before


def test_parity_runs_on_the_images_pytorch_was_scored_on(job_parts, tmp_path: Path) -> None:
    """Every runtime's accuracy is on the same images, in the same order, as the PyTorch figure beside
    it: all validation images by default; a subset (export.validate_samples) says its size."""
    assert ExportConfig().validate_samples is None  # default: every validation image
    data, model, spec, ref = job_parts  # PyTorch's logits on the first 200 of the 359 images
    seen: list[np.ndarray] = []

    def echo(x: np.ndarray) -> np.ndarray:  # a runtime that agrees with PyTorch image for image
        start = sum(len(s) for s in seen)
        seen.append(x.copy())
        return ref.numpy()[start : start + len(x)]

    job = ExportJob("student", model, spec, data, tmp_path, ExportConfig(), export_plan(ExportConfig()), ref)
    parity = validate(Runner(echo, "echo", "0", "cpu", "fp32", 1), job, what="echo", precision="fp32")
    x, y = data.val_inputs(200)
    np.testing.assert_array_equal(np.concatenate(seen), x.numpy())
    assert parity["samples"] == 200 and parity["of"] == data.num_val == 359
    assert parity["torch_accuracy"] == round(accuracy(ref, y), 3) == parity["accuracy"]
    assert parity["top1_agreement"] == 1.0
