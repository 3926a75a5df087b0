"""TensorRT engines: built here when TensorRT and a CUDA GPU are present, otherwise left to
the device kit on the target, with the exact commands printed (engines are specific to
the GPU and TensorRT version they are built with: build them on the device).

FP16 engines come from the FP32 ONNX; INT8 engines from the Q/DQ ONNX (explicit
quantization), which must first pass TensorRT's Q/DQ rules (tensorrt_rules.py).
"""

from __future__ import annotations

import shlex

from edgekd.core.devicekit import load_kit
from edgekd.core.errors import ExportError
from edgekd.core.registries import EXPORTERS
from edgekd.engines.exporters.base import Exported, Exporter, ExportJob, file_size_mb, validate
from edgekd.engines.exporters.tensorrt_rules import check_qdq, int8_attention
from edgekd.engines.plan.deployment import TargetPlan
from edgekd.engines.runtimes.tensorrt import TensorRTRuntime, tensorrt_here


def _major(version: str | None) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 10


@EXPORTERS.register("tensorrt", help="TensorRT engine (FP16, INT8 from Q/DQ) or the device-kit command to build it")
class TensorRTExporter(Exporter):
    name = "tensorrt"

    def export(self, job: ExportJob) -> list[Exported]:
        src = job.onnx_artifact()
        if src is None or src.path is None:
            raise ExportError("the tensorrt exporter needs the ONNX export first", hint="keep 'onnx' in export.formats")
        targets: list[TargetPlan | None] = list(job.plan.targets_running("tensorrt")) or [None]
        if job.quantized:
            problems = check_qdq(src.path)
            if problems:
                raise ExportError(
                    f"{src.path.name} does not follow TensorRT's explicit-quantization rules "
                    f"({len(problems)} problems, e.g. {problems[0]})",
                    hint="quantize with quantize.preset: tensorrt (symmetric, signed, per-tensor activations)",
                )
        out: list[Exported] = []
        for target in targets:
            for prec in self._precisions(job, target):
                out.append(self._one(job, src.path, prec, target))
        float_attention = [n for n, int8 in int8_attention(src.path).items() if not int8] if job.quantized else []
        if float_attention:  # said beside the engine: a user reading INT8 expects every MatMul in INT8
            for e in out:
                e.note = (f"{e.note}; " if e.note else "") + (
                    f"{len(float_attention)} attention MatMuls (q·kᵀ, attn·v) stay in float: ops sit between them "
                    "and their quantizers")
        return out

    @staticmethod
    def _precisions(job: ExportJob, target: TargetPlan | None) -> list[str]:
        allowed = target.precisions if target else ["fp32", "fp16", "int8"]
        if job.quantized:
            return ["int8"] if "int8" in allowed else []
        # float models: FP16 (tensor cores); FP32 engines only when asked for explicitly
        wanted = ["fp16", *(["fp32"] if "precisions" in job.cfg.model_fields_set and "fp32" in job.cfg.precisions else [])]
        return [p for p in wanted if p in allowed]

    def _one(self, job: ExportJob, onnx_path, prec: str, target: TargetPlan | None) -> Exported:
        kit = load_kit()
        suffix = f"_{target.target}" if target else ""
        engine = job.out_dir / f"{job.label}_{prec}{suffix}.engine"
        size = job.spec.input_size
        batch = job.cfg.engine_batch
        shape = (batch, 3, size, size)
        trt_major = _major(target.tensorrt_version if target else None)
        trtexec = shlex.join(kit.trtexec_command(onnx_path.name, engine.name, prec, shape, max(8, batch), trt_major))
        kit_cmd = (f"python3 edgekd_kit.py build-engine {onnx_path.name} --precision {prec} --batch {batch} "
                   f"--out {engine.name}")
        reason = tensorrt_here()
        where = target.target if target else None
        if reason is not None:
            return Exported(job.label, "tensorrt", prec, None, "deferred", command=kit_cmd, trtexec=trtexec,
                            target=where, note=f"engines are built on the device: {reason}")
        info = kit.build_engine(onnx_path, prec, batch, max(8, batch), engine, 1024)
        runner = TensorRTRuntime().load(engine, precision=prec, threads=None, device="cuda")
        parity = validate(runner, job, what=f"{engine.name} ({prec}, tensorrt)", precision=prec)
        return Exported(job.label, "tensorrt", prec, engine, "ok", file_size_mb(engine), parity, command=kit_cmd,
                        trtexec=trtexec, target=where, note=f"built here with {info['how']}; engines only run on this GPU and TensorRT version")
