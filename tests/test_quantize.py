"""INT8: quantizers in the exported graph, Q/DQ ONNX in ONNX Runtime, OpenVINO IR, parity, ignored scope."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import export_plan

import edgekd
from edgekd.core.config import DataConfig, ExportConfig
from edgekd.core.errors import ExportError, QuantizationError
from edgekd.engines.data import load_data
from edgekd.engines.exporters.base import SIGNIFICANCE, ExportJob, validate
from edgekd.engines.exporters.onnx import OnnxExporter
from edgekd.engines.exporters.openvino_ir import OpenVINOExporter
from edgekd.engines.models.artifact import ModelSpec, load_model, save_model
from edgekd.engines.models.build import build_model
from edgekd.engines.plan.deployment import overflow_fix as resolve_overflow_fix
from edgekd.engines.plan.deployment import plan_target
from edgekd.engines.quantization.bn_fold import fold_batchnorm
from edgekd.engines.quantization.nncf_int8 import calibration_batches, quantize, quantized_layers, quantizer_config
from edgekd.engines.quantization.overflow import host_has_vnni
from edgekd.engines.runtimes.base import Runner
from edgekd.engines.runtimes.onnxruntime import optimized_op_types
from edgekd.engines.train.evaluate import predict_logits

KW = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """A small trained student, NNCF-quantized with one layer kept in float, saved and reloaded."""
    from edgekd.core.config import LossTerm, TrainConfig
    from edgekd.engines.train.trainer import train

    torch.manual_seed(0)  # the same model on every run: parity on a tiny model depends on its near-ties
    data = load_data(DataConfig(source="digits", image_size=16))
    model = build_model("resnet18", 10, KW)
    train(model, data, TrainConfig(epochs=8, batch_size=64, loss=[LossTerm(name="ce")]))  # ~95%: few near-ties
    calib = calibration_batches(data.normalize(data.train_x[:256]), 256)
    fix, _ = resolve_overflow_fix("auto", [], True, host_has_vnni())  # as the stage does when OpenVINO is exported
    folded = fold_batchnorm(model.eval())  # as the stage does
    q = quantize(model.eval(), calib, symmetric=False, per_channel=True, ignored=["layer1.0.conv2"],
                 overflow_fix=fix, quiet=True)
    spec = ModelSpec("resnet18", 10, KW, data.preprocessing(), role="quantized",
                     quantization={"method": "ptq", "folded_batchnorm": folded, "nncf_config": quantizer_config(q)})
    folder = save_model(q, spec, tmp_path_factory.mktemp("q") / "model")
    return data, q, spec, folder


def test_quantized_model_reloads_exactly(quantized) -> None:
    data, q, _, folder = quantized
    again, _ = load_model(folder)
    x = data.normalize(data.val_x[:8])
    assert torch.equal(q.eval()(x), again(x))


def test_ignored_scope_is_respected(quantized) -> None:
    _, q, _, _ = quantized
    hooks = quantized_layers(quantizer_config(q))
    assert any("layer1/0/conv1/" in h for h in hooks)
    assert not any("layer1/0/conv2/conv2d/0__1" in h for h in hooks)  # its weights are kept in float
    with pytest.raises(QuantizationError, match="no layer named 'layer9'"):
        quantize(build_model("resnet18", 10, KW).eval(), [torch.randn(4, 3, 16, 16)], symmetric=True,
                 per_channel=True, ignored=["layer9"], quiet=True)


def test_qdq_onnx_and_openvino_int8(quantized, tmp_path: Path) -> None:
    data, q, spec, folder = quantized
    model, spec = load_model(folder)
    ref = predict_logits(model, data, torch.device("cpu"))
    job = ExportJob("quantized", model, spec, data, tmp_path, ExportConfig(), export_plan(ExportConfig()), ref)
    (rec,) = OnnxExporter().export(job)
    assert rec.precision == "int8"
    graph = onnx.load(str(rec.path))
    ops = Counter(n.op_type for n in graph.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    assert all(n.domain in ("", "ai.onnx") for n in graph.graph.node)  # no vendor FakeQuantize op
    assert {o.domain for o in graph.opset_import} <= {"", "ai.onnx"}
    assert rec.parity["accuracy_gap"] <= 0.5  # measured in ONNX Runtime against the PyTorch QAT model
    producers = {o: n.op_type for n in graph.graph.node for o in n.output}
    convs = {n.name: n for n in graph.graph.node if n.op_type == "Conv"}
    assert producers[convs["/layer1/layer1.0/conv1/Conv"].input[1]] == "DequantizeLinear"
    assert producers.get(convs["/layer1/layer1.0/conv2/Conv"].input[1]) != "DequantizeLinear"  # ignored: float
    assert ops["BatchNormalization"] == 0  # folded: nothing stands between a conv and its output quantizer
    # ONNX Runtime runs the quantized convs with integer kernels (here all but layer1.0.conv2, kept
    # in float, and layer1.0.conv1, which reads the max-pool's output: 11 of 13)
    assert integer_convs(rec.path) >= len(convs) - 3
    job.previous.append(rec)
    try:
        (ov,) = OpenVINOExporter().export(job)
    except ExportError as exc:
        if host_has_vnni() is not False:
            raise
        # Known, measured here (AMD EPYC, AVX2, no VNNI): OpenVINO's INT8 results for this same
        # file vary from run to run (89.4%, 92.2%, 94.2% against PyTorch's 94.15%); the parity
        # check must then catch it, with both numbers. The pipeline records it as a failed
        # optional export on such a host (test_quantize_stage_qat_with_teacher).
        assert re.search(r"disagrees with PyTorch.*accuracy \d+\.\d+% \(openvino\)", str(exc))
        return
    assert ov.precision == "int8" and ov.path.with_suffix(".bin").exists()
    # OpenVINO's INT8 kernels are not bit-exact with ONNX Runtime's on the same Q/DQ file
    # (measured here: 97-99.7% top-1 agreement, gaps of -0.3 to +1.7 points on 359 images,
    # none significant). The exporter fails a significant loss (test below); here the IR
    # must reproduce the QAT model's predictions closely and lose nothing significant.
    assert ov.parity["top1_agreement"] >= 0.96
    assert ov.parity["p_value"] >= SIGNIFICANCE


def integer_convs(path: Path) -> int:
    """How many convolutions ONNX Runtime runs with integer kernels (QLinearConv)."""
    return optimized_op_types(path).count("QLinearConv")


def test_batchnorm_folding_is_exact_and_keeps_activations() -> None:
    from edgekd.engines.quantization.bn_fold import conv_bn_pairs

    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    for name, kw in [("resnet18", KW), ("mobilenetv3_small_050", {})]:
        model = build_model(name, 10, kw)
        model.train()
        model(torch.randn(16, 3, 32, 32))  # non-trivial running statistics
        model.eval()
        before = model(x)
        acts = sum(isinstance(m, (torch.nn.ReLU, torch.nn.Hardswish)) for m in model.modules())
        pairs = fold_batchnorm(model)
        assert pairs and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert sum(isinstance(m, (torch.nn.ReLU, torch.nn.Hardswish)) for m in model.modules()) == acts
        torch.testing.assert_close(model(x), before, atol=1e-4, rtol=1e-4)
        assert conv_bn_pairs(model) == []


def test_unfolded_int8_convs_stay_float_in_onnxruntime(tmp_path: Path) -> None:
    """Why the quantize stage folds: with BN between conv and quantizer ORT cannot use INT8 kernels."""
    from edgekd.engines.exporters.onnx_io import export_onnx, strip_quantizers
    from edgekd.engines.latency.onnx_graph import analyze

    x = torch.randn(2, 3, 16, 16)
    counts = {}
    for name, kw in (("resnet18", KW), ("mobilenetv3_small_050", {})):
        for fold in (False, True):
            torch.manual_seed(0)
            model = build_model(name, 10, kw).eval()
            if fold:
                fold_batchnorm(model)
            q = quantize(model, [torch.randn(8, 3, 16, 16)], symmetric=False, per_channel=True, ignored=[], quiet=True)
            path = export_onnx(strip_quantizers(q, x), x, tmp_path / f"{name}{fold}.onnx", 17)
            counts[name, fold] = integer_convs(path)
            # the latency predictor's cost analysis marks exactly the convs ORT runs in INT8
            assert sum(layer.op == "Conv" and layer.precision == "int8" for layer in analyze(path)) == counts[name, fold]
    assert counts["resnet18", False] == 0 and counts["resnet18", True] >= 8
    assert counts["mobilenetv3_small_050", True] > counts["mobilenetv3_small_050", False]


def test_parity_check_catches_a_broken_int8_export(quantized, tmp_path: Path) -> None:
    data, q, spec, _ = quantized
    ref = predict_logits(q, data, torch.device("cpu"))
    job = ExportJob("quantized", q, spec, data, tmp_path, ExportConfig(), export_plan(ExportConfig()), ref)
    rng = np.random.default_rng(0)
    noisy = Runner(lambda x: ref.numpy()[: x.shape[0]] + rng.normal(0, 3, (x.shape[0], 10)), "fake", "0", "cpu",
                   "int8", 1)
    with pytest.raises(ExportError, match=r"(?s)accuracy \d+\.\d+% \(fake\) vs \d+\.\d+% \(PyTorch\).*within 0.5"):
        validate(noisy, job, what="broken.onnx", precision="int8")


def test_quantize_stage_qat_with_teacher(finished_run, tmp_path: Path) -> None:
    cfg, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    cfg = {**cfg, "output_dir": str(tmp_path), "stages": ["distill", "quantize", "export", "bench", "report"],
           "quantize": {"train": {"epochs": 1}, "calibration_size": 128}}
    report = edgekd.compress(cfg, ["host"], resume=True, quiet=True)
    assert report.stages["distill"]["resumed"] and not report.stages["quantize"]["resumed"]
    comp = report.comparisons["quantize"]
    assert {"fp32", "ptq", "int8"} <= set(comp)
    row = report.model("quantized")
    assert "onnx int8 (onnxruntime)" in row.runtime_accuracy
    (ov,) = [e for e in report.exports if e["model"] == "quantized" and e["format"] == "openvino"]
    if ov["status"] != "ok" and host_has_vnni() is False:
        # Known: even with 7-bit weights, OpenVINO's INT8 kernels on a CPU without VNNI sometimes
        # lose significantly on this ~55%-accurate tiny model. Optional on host, so the run goes
        # on, and the failure must be recorded with its numbers.
        assert ov["status"] == "failed" and "disagrees with PyTorch" in ov["note"]
        expected = {("onnxruntime", "int8")}
    else:
        assert ov["status"] == "ok" and "openvino int8 (openvino)" in row.runtime_accuracy
        expected = {("onnxruntime", "int8"), ("openvino", "int8")}
    assert {(x["runtime"], x["precision"]) for x in report.latency if x["model"] == "quantized"} == expected


def test_overflow_fix_follows_the_cpu(tmp_path: Path) -> None:
    """7-bit weights only where OpenVINO INT8 runs on an x86 CPU without VNNI."""
    from edgekd.core.profiles import resolve_target

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor : 0\nflags : fpu sse avx avx2 fma\n")
    vnni = tmp_path / "vnni"
    vnni.write_text("flags : fpu avx2 avx512f avx512_vnni\n")
    arm = tmp_path / "arm"
    arm.write_text("processor : 0\nFeatures : fp asimd asimddp\n")
    assert host_has_vnni(avx2) is False and host_has_vnni(vnni) is True and host_has_vnni(arm) is None
    assert host_has_vnni(tmp_path / "absent") is None
    assert resolve_overflow_fix("auto", [], True, False)[0] == "enable"
    assert resolve_overflow_fix("auto", [], False, False)[0] == "first_layer_only"  # no OpenVINO: nothing saturates
    assert resolve_overflow_fix("auto", [], True, True)[0] == "first_layer_only"
    old_cpu = plan_target(resolve_target("intel-x86-cpu")[0].model_copy(update={"int8_vnni": False}))
    fix, why = resolve_overflow_fix("auto", [old_cpu], False, True)
    assert fix == "enable" and "intel-x86-cpu" in why
    assert resolve_overflow_fix("disable", [old_cpu], True, False)[0] == "disable"  # the user decides


def test_sign_test_tells_rounding_from_a_broken_export() -> None:
    from edgekd.engines.exporters.base import SIGNIFICANCE, sign_test_p

    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(4, 1) > SIGNIFICANCE  # 3 images net lost to rounding: not significant
    assert sign_test_p(40, 2) < SIGNIFICANCE  # a broken export
    assert sign_test_p(1, 4) > 0.9  # the runtime did better


def test_qat_below_ptq_keeps_the_calibrated_model(finished_run, tmp_path: Path) -> None:
    """QAT never ships below PTQ: an absurd learning rate wrecks QAT, the calibrated model is saved instead."""
    import json

    from edgekd.engines.train.evaluate import evaluate

    cfg, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    wreck = {"epochs": 1, "optimizer": {"name": "adamw", "lr": 5.0, "weight_decay": 0.0}, "augment": {"shift": 0}}
    cfg = {**cfg, "output_dir": str(tmp_path), "stages": ["distill", "quantize"],
           "quantize": {"train": wreck, "calibration_size": 128}}
    report = edgekd.compress(cfg, ["host"], resume=True, quiet=True)
    m = json.loads((tmp_path / "tiny" / "manifest.json").read_text())["stages"]["quantize"]["metrics"]
    assert m["method"] == "qat" and m["kept"] == "ptq"
    assert m["qat_accuracy"] < m["ptq_accuracy"] == m["accuracy"]
    assert re.fullmatch(r"QAT \d+\.\d\d% < PTQ \d+\.\d\d%: kept the calibrated model", m["reason"])
    comp = report.comparisons["quantize"]
    assert comp["kept"] == "ptq" and comp["int8"] == comp["ptq"] and "kept the calibrated model" in comp["summary"]
    model, spec = load_model(tmp_path / "tiny" / "quantize" / "model")
    assert spec.quantization["method"] == "ptq"
    data = load_data(DataConfig(**cfg["data"]))
    assert round(evaluate(model, data, torch.device("cpu")), 3) == m["ptq_accuracy"]  # the saved file is the PTQ one


def test_keep_better_prefers_qat_on_a_tie() -> None:
    from edgekd.stages.quantize import keep_better

    assert keep_better(80.0, 80.0).kept == "qat"
    low = keep_better(95.9, 96.85)
    assert (low.kept, low.accuracy, low.reason) == ("ptq", 96.85, "QAT 95.90% < PTQ 96.85%: kept the calibrated model")
