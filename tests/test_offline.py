"""No network at run time: NNCF's and OpenVINO's usage telemetry stay off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PROBE = ("import edgekd, nncf.telemetry.wrapper as w; "
         "print('stub' if isinstance(w.telemetry, w.NNCFTelemetryStub) else 'reporting')")


def _nncf_telemetry(env_extra: dict[str, str]) -> str:
    # A fresh interpreter: NNCF stubs its telemetry by itself whenever pytest is imported.
    env = {k: v for k, v in os.environ.items() if k not in ("NNCF_CI", "NNCF_DEV", "EDGEKD_ALLOW_TELEMETRY")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**env, **env_extra}, capture_output=True,
                         text=True, timeout=300, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_importing_edgekd_turns_nncf_telemetry_off() -> None:
    assert _nncf_telemetry({}) == "stub"
    assert _nncf_telemetry({"EDGEKD_ALLOW_TELEMETRY": "1"}) == "reporting"  # the user's choice wins


def test_openvino_export_does_not_use_the_reporting_converter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import openvino as ov
    from conftest import export_plan

    from edgekd.core.config import DataConfig, ExportConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.exporters.base import ExportJob
    from edgekd.engines.exporters.onnx import OnnxExporter
    from edgekd.engines.exporters.openvino_ir import OpenVINOExporter
    from edgekd.engines.models.artifact import ModelSpec
    from edgekd.engines.models.build import build_model
    from edgekd.engines.train.evaluate import predict_logits

    def refuse(*_a, **_k):
        raise AssertionError("ov.convert_model reports usage to Google Analytics")

    monkeypatch.setattr(ov, "convert_model", refuse)
    data = load_data(DataConfig(source="digits", image_size=16))
    model = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [4, 8, 8, 8]}).eval()
    spec = ModelSpec("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [4, 8, 8, 8]}, data.preprocessing())
    job = ExportJob("student", model, spec, data, tmp_path, ExportConfig(precisions=["fp32"]), export_plan(ExportConfig(precisions=["fp32"])),
                    predict_logits(model, data, torch.device("cpu"), limit=64))
    job.previous.extend(OnnxExporter().export(job))
    (ir,) = OpenVINOExporter().export(job)
    assert ir.status == "ok" and ir.parity["top1_agreement"] == 1.0


def test_quantizing_builds_no_nncf_extension(tmp_path: Path) -> None:
    """A fresh machine compiles nothing for QAT: not NNCF's C++ extension (92 s here, beyond NNCF's
    60 s timeout), not Inductor kernels for NNCF's torch.compile'd fallback (24 s)."""
    script = (
        "import torch, edgekd\n"
        "from edgekd.engines.models.build import build_model\n"
        "from edgekd.engines.quantization.nncf_int8 import quantize\n"
        "m = build_model('resnet18', 10, {'layers': [1, 1, 1, 1], 'channels': [4, 8, 8, 8]}).eval()\n"
        "q = quantize(m, [torch.randn(4, 3, 16, 16)], symmetric=False, per_channel=True, ignored=[], quiet=True)\n"
        "q.train(); q(torch.randn(4, 3, 16, 16)).sum().backward()\n"
        "print('grad', float(sum(p.grad.abs().sum() for p in q.parameters() if p.grad is not None)) > 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EDGEKD_NNCF_COMPILED_KERNELS"}
    env["TORCH_EXTENSIONS_DIR"] = str(tmp_path / "ext")  # where the builds would go
    env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip().endswith("grad True")  # QAT's backward works through the reference kernels
    built = [f for d in ("ext", "inductor") if (tmp_path / d).exists() for f in (tmp_path / d).rglob("*") if f.is_file()]
    assert built == []
