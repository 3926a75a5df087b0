"""ONNX export matches PyTorch on real inputs; a broken export fails with both numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgekd.core.config import DataConfig, ExportConfig
from edgekd.core.errors import ExportError
from edgekd.data import load_data
from edgekd.exporters.base import ExportJob, validate
from edgekd.exporters.onnx import OnnxExporter
from edgekd.latency.backends.base import Runner
from edgekd.models.artifact import ModelSpec
from edgekd.models.build import build_model
from edgekd.train.evaluate import predict_logits


@pytest.fixture(scope="module")
def job_parts():
    data = load_data(DataConfig(source="digits", image_size=16))
    model = build_model("mobilenetv3_small_050", 10).eval()
    ref = predict_logits(model, data, torch.device("cpu"), limit=200)
    spec = ModelSpec("mobilenetv3_small_050", 10, {}, data.preprocessing())
    return data, model, spec, ref


def test_onnx_export_parity(job_parts, tmp_path: Path) -> None:
    data, model, spec, ref = job_parts
    job = ExportJob("student", model, spec, data, tmp_path, ExportConfig(opset=13), [], ref)
    (rec,) = OnnxExporter().export(job)
    assert rec.path.exists() and rec.precision == "fp32"
    m = onnx.load(str(rec.path))
    assert m.opset_import[0].version == 13
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch
    assert rec.parity["max_abs_diff"] < 1e-4 and rec.parity["top1_agreement"] == 1.0
    assert rec.parity["accuracy"] == rec.parity["torch_accuracy"]


def test_broken_export_is_caught(job_parts, tmp_path: Path) -> None:
    data, model, spec, ref = job_parts
    job = ExportJob("student", model, spec, data, tmp_path, ExportConfig(), [], ref)
    shuffled = Runner(lambda x: np.roll(ref.numpy()[: x.shape[0]], 1, axis=1), "fake", "0", "cpu", "fp32", 1)
    with pytest.raises(ExportError, match=r"(?s)disagrees with PyTorch.*accuracy .* vs .*PyTorch"):
        validate(shuffled, job, what="broken.onnx", precision="fp32")
    slightly_off = Runner(lambda x: ref.numpy()[: x.shape[0]] + 1e-2, "fake", "0", "cpu", "fp32", 1)
    with pytest.raises(ExportError, match="max \\|diff\\|"):
        validate(slightly_off, job, what="off.onnx", precision="fp32")
