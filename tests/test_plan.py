"""The deployment plan: target-dependent decisions resolved once, typed, recorded; and a new
export format added with its own file plus one row of the formats table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import tiny_config

from edgekd.core.config import Config
from edgekd.core.hostinfo import host_channel_multiple
from edgekd.core.profiles import resolve_target
from edgekd.engines.plan.deployment import plan_run


def _plan(targets: list[str], host_vnni: bool | None = True, **over):
    cfg = Config.model_validate(tiny_config(Path("/nonexistent"), **over))
    return plan_run(cfg, [resolve_target(t)[0] for t in targets], host_vnni=host_vnni)


def test_host_plan() -> None:
    plan = _plan(["host"])
    assert plan.export_formats == ["onnx", "openvino"] and plan.required_formats == ["onnx"]
    assert plan.quantizer.preset == "mixed" and plan.opset == 17
    host = plan.target("host")
    assert (host.runtime, host.format, host.measured_here) == ("onnxruntime", "onnx", True)
    assert plan.channel_rounding == host_channel_multiple(host.deploy_precision)[0]
    assert host.channel_rounding_source.startswith("this CPU")


def test_device_targets_decide_formats_preset_and_opset() -> None:
    plan = _plan(["host", "jetson-nano", "raspberry-pi-5"])
    assert plan.export_formats == ["onnx", "openvino", "tensorrt"]
    assert plan.required_formats == ["onnx", "tensorrt"]  # each device target's deploy format must validate
    assert plan.opset == 13  # Jetson Nano's TensorRT 8.2
    assert plan.quantizer.preset == "tensorrt" and "TensorRT" in plan.quantizer.preset_reason
    assert [t.target for t in plan.targets_running("tensorrt")] == ["jetson-nano"]
    assert plan.quantizer.recipe().signed_activations


def test_overflow_fix_and_rounding_come_from_the_plan() -> None:
    plan = _plan(["host"], host_vnni=False, prune={"round_to": 8})
    assert plan.quantizer.overflow_fix == "enable"  # OpenVINO INT8 validated on a CPU without VNNI
    assert plan.channel_rounding == 8 and plan.target("host").channel_rounding_source == "prune.round_to"
    assert _plan(["host"], host_vnni=True).quantizer.overflow_fix == "first_layer_only"
    assert _plan(["host"], quantize={"preset": "symmetric"}).quantizer.preset_reason == "set in quantize.preset"


def test_channel_rounding_follows_the_deployed_precision() -> None:
    """The profile's channel multiple at the precision the run ships: INT8 when it quantizes."""
    float_run = _plan(["jetson-orin-nano", "raspberry-pi-5"])  # the tiny config does not quantize
    orin, pi = float_run.target("jetson-orin-nano"), float_run.target("raspberry-pi-5")
    assert (orin.deploy_precision, orin.channel_rounding) == ("fp16", 8)
    assert (pi.deploy_precision, pi.channel_rounding) == ("fp32", 4)
    assert orin.channel_rounding_source == "profile jetson-orin-nano: channel_multiple.fp16"
    assert float_run.channel_rounding == 8  # the lcm over targets
    stages = ["distill", "prune", "quantize", "export"]
    int8_run = _plan(["jetson-orin-nano", "raspberry-pi-5", "jetson-nano"], stages=stages)
    assert int8_run.target("jetson-orin-nano").channel_rounding == 32
    assert int8_run.target("raspberry-pi-5").channel_rounding == 16
    nano = int8_run.target("jetson-nano")  # no INT8 on the Nano: it ships FP16
    assert (nano.deploy_precision, nano.channel_rounding) == ("fp16", 2)
    assert int8_run.channel_rounding == 32
    assert _plan(["jetson-orin-nano"], prune={"round_to": 4}).channel_rounding == 4  # prune.round_to wins


@pytest.mark.parametrize(("cpuinfo", "precision", "expected"), [
    ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", "int8", 16),
    ("flags\t\t: fpu sse2 avx avx2 fma\n", "fp32", 8),
    ("Features\t: fp asimd evtstrm asimddp\n", "fp32", 4),
    ("Features\t: fp asimd evtstrm asimddp\n", "int8", 16),
    ("processor\t: 0\n", "fp32", 8),
])
def test_host_channel_multiple_from_the_cpu(tmp_path: Path, cpuinfo: str, precision: str, expected: int) -> None:
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    value, why = host_channel_multiple(precision, tmp_path / "cpuinfo")
    assert value == expected and why


def test_report_records_the_plan(finished_run) -> None:
    _, report, _ = finished_run
    data = json.loads((Path(report.run_dir) / "report" / "report.json").read_text())
    assert data["plan"]["export_formats"][0] == "onnx"
    assert data["plan"]["targets"][0]["target"] == "host"
    assert data["plan"]["quantizer"]["preset"] in ("mixed", "tensorrt", "symmetric")


EXPORTER = '''
import shutil
from edgekd.core.registries import EXPORTERS
from edgekd.engines.exporters.base import Exported, Exporter, file_size_mb, validate
from edgekd.engines.runtimes.onnxruntime import OnnxRuntime


@EXPORTERS.register("onnxcopy", help="a copy of the ONNX file under another suffix")
class CopyExporter(Exporter):
    name = "onnxcopy"

    def export(self, job):
        src = job.onnx_artifact()
        dst = job.out_dir / f"{job.label}.onnxcopy"
        shutil.copy(src.path, dst)
        runner = OnnxRuntime().load(dst, precision="fp32", threads=None)
        parity = validate(runner, job, what=dst.name, precision="fp32")
        return [Exported(job.label, "onnxcopy", "fp32", dst, "ok", file_size_mb(dst), parity)]
'''


def test_a_new_format_is_its_file_plus_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter's module and one row in FORMATS: config, export stage and `edgekd bench` follow."""
    from edgekd import api
    from edgekd.core import formats, registries

    registries.EXPORTERS.names()  # loaded as shipped; the registration below is undone after the test
    monkeypatch.setattr(registries.EXPORTERS, "_entries", dict(registries.EXPORTERS._entries))
    monkeypatch.setattr(registries.EXPORTERS, "_imported", set(registries.EXPORTERS._imported))
    monkeypatch.delitem(sys.modules, "my_exporter", raising=False)
    (tmp_path / "my_exporter.py").write_text(EXPORTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    row = formats.Format("onnxcopy", (".onnxcopy",), ("onnxruntime",), ("fp32",), built_from="onnx",
                         exporter="my_exporter")
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, row))
    cfg = tiny_config(tmp_path / "runs", stages=["distill", "export"], export={"formats": ["onnxcopy"]},
                      distill={"epochs": 1, "batch_size": 64})
    report = api.compress(cfg, targets=["host"], quiet=True)
    copied = [e for e in report.exports if e["format"] == "onnxcopy"]
    assert {e["model"] for e in copied} == {"teacher", "student"} and all(e["status"] == "ok" for e in copied)
    path = Path(report.run_dir) / copied[0]["path"]
    records = api.bench_file(path, targets=["host"], runtimes=["onnxruntime"], repeats=3, rounds=1)
    assert [(r["format"], r["runtime"], r["kind"]) for r in records] == [("onnxcopy", "onnxruntime", "measured")]
