"""OpenVINO IR (.xml + .bin) from the validated ONNX file: FP32, FP16 (compressed
weights), or INT8 when the ONNX holds Q/DQ nodes (OpenVINO turns them into its own
FakeQuantize and runs INT8 kernels). Validated with the OpenVINO runtime itself."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgekd.core.errors import ExportError
from edgekd.core.registries import EXPORTERS
from edgekd.engines.exporters.base import Exported, Exporter, ExportJob, file_size_mb, validate
from edgekd.engines.runtimes.openvino import OpenVINORuntime


@EXPORTERS.register("openvino", help="OpenVINO IR: FP32, FP16, INT8 (from the Q/DQ ONNX)")
class OpenVINOExporter(Exporter):
    name = "openvino"

    def export(self, job: ExportJob) -> list[Exported]:
        import openvino as ov

        src = job.onnx_artifact()
        if src is None or src.path is None:
            raise ExportError("the openvino exporter needs the ONNX export first", hint="keep 'onnx' in export.formats")
        try:  # read_model, not convert_model: the same ONNX frontend, without usage telemetry (core/offline.py)
            model = ov.Core().read_model(str(src.path))
        except Exception as exc:  # conversion errors come as OpenVINO's own types
            raise ExportError(f"OpenVINO could not convert {src.path}: {exc}") from None
        precisions = ["int8"] if job.quantized else [p for p in job.cfg.precisions if p in ("fp32", "fp16")]
        out = []
        for prec in precisions:
            xml = job.out_dir / f"{job.label}_{prec}.xml"
            try:
                with tempfile.TemporaryDirectory(dir=job.out_dir) as tmp:
                    ov.save_model(model, str(Path(tmp) / xml.name), compress_to_fp16=(prec == "fp16"))
                    os.replace(Path(tmp) / xml.with_suffix(".bin").name, xml.with_suffix(".bin"))
                    os.replace(Path(tmp) / xml.name, xml)  # the .xml last: it marks the IR complete
            except Exception as exc:
                raise ExportError(f"writing OpenVINO IR {xml} failed: {exc}") from None
            runner = OpenVINORuntime().load(xml, precision=prec, threads=None)
            try:
                parity = validate(runner, job, what=f"{xml.name} ({prec}, openvino)", precision=prec)
            except ExportError as exc:
                if job.recipe is not None and job.recipe.signed_activations:
                    exc.hint = ("this model was quantized for TensorRT (signed INT8 activations), which OpenVINO's "
                                "CPU kernels on this machine do not reproduce; for Intel targets quantize with "
                                "quantize.preset: mixed (a separate run), or leave openvino out of the targets. "
                                + (exc.hint or ""))
                raise

            size = file_size_mb(xml) + file_size_mb(xml.with_suffix(".bin"))
            out.append(Exported(job.label, "openvino", prec, xml, "ok", round(size, 4), parity,
                                note=runner.notes))
        return out
