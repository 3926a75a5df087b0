"""ONNX export: FP32, or INT8 with standard QuantizeLinear/DequantizeLinear nodes
(the writing itself is ``edgekd.engines.exporters.onnx_io``), validated in ONNX Runtime against PyTorch."""

from __future__ import annotations

from edgekd.core.registries import EXPORTERS
from edgekd.engines.exporters.base import Exported, Exporter, ExportJob, file_size_mb, validate
from edgekd.engines.exporters.onnx_io import export_onnx, refuse_vendor_ops, strip_quantizers
from edgekd.engines.runtimes.onnxruntime import OnnxRuntime


@EXPORTERS.register("onnx", help="ONNX (FP32; INT8 as QuantizeLinear/DequantizeLinear)")
class OnnxExporter(Exporter):
    name = "onnx"

    def export(self, job: ExportJob) -> list[Exported]:
        example = job.spec.example_input(2)
        precision = "int8" if job.quantized else "fp32"
        model = strip_quantizers(job.model, example) if job.quantized else job.model
        notes: list[str] = []
        path = export_onnx(model, example, job.out_dir / f"{job.label}.onnx", job.opset(),
                           max_opset=job.plan.opset_cap, notes=notes)
        if job.quantized:
            refuse_vendor_ops(path)
        runner = OnnxRuntime().load(path, precision=precision, threads=None)
        parity = validate(runner, job, what=f"{path.name} ({precision}, onnxruntime)", precision=precision)
        return [Exported(job.label, "onnx", precision, path, "ok", file_size_mb(path), parity,
                         note="; ".join(notes) or f"opset {job.opset()}")]
