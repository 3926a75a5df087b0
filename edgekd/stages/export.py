"""Export: every model of the run (or only the final one) in each configured format.

The teacher is exported too: speed-ups are stated against the teacher on its own best
backend, not only against PyTorch eager. Each artifact is validated against PyTorch on
real validation images with its own runtime; a mismatch fails the stage (the file stays
for inspection). ``exports.json`` lists what was written, with parity numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekd.core import registries
from edgekd.core.rundir import atomic_write_json
from edgekd.exporters.base import Exported, ExportJob
from edgekd.models.artifact import load_model
from edgekd.stages.base import RunContext, Stage, StageResult
from edgekd.train.evaluate import predict_logits


class ExportStage(Stage):
    name = "export"

    def settings(self, ctx: RunContext) -> Any:
        return {"export": ctx.config.export.model_dump(mode="json"),
                "targets": [t.model_dump(mode="json") for t in ctx.targets]}

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.export
        formats = list(dict.fromkeys(["onnx", *cfg.formats]))  # the others build on the ONNX file
        models = ctx.model_dirs()
        if cfg.models == "final" and len(models) > 2:
            last = list(models)[-1]
            models = {"teacher": models["teacher"], last: models[last]} if "teacher" in models else {last: models[last]}
        records: list[Exported] = []
        artifacts: dict[str, Path] = {}
        with ctx.reporter.task("export", total=len(models) * len(formats)) as advance:
            for label, folder in models.items():
                model, spec = load_model(folder)
                model = model.cpu()  # exports are traced and validated on the CPU
                ref = predict_logits(model, ctx.data, torch.device("cpu"), limit=cfg.validate_samples)
                job = ExportJob(label, model, spec, ctx.data, out, cfg, ctx.targets, ref)
                for fmt in formats:
                    exporter = registries.EXPORTERS.get(fmt, key="export.formats")()
                    done = exporter.export(job)
                    job.previous.extend(done)
                    records.extend(done)
                    advance(1, status=f"{label} {fmt}")
                self._write_sidecar(out, label, spec, ctx)
                artifacts[f"meta:{label}"] = out / f"{label}.json"
        for r in records:
            if r.path is not None and r.path.exists():
                artifacts[f"{r.format}:{r.model}:{r.precision}"] = r.path
        atomic_write_json(out / "exports.json", [r.as_dict(ctx.run.root) for r in records])
        artifacts["exports"] = out / "exports.json"
        for r in records:
            p = r.parity
            acc = f"{p['accuracy']:.2f}% (torch {p['torch_accuracy']:.2f}%)" if p else r.status
            ctx.reporter.line(f"[green]export[/]: {r.model} {r.format} {r.precision}: {acc}")
        return StageResult({"exports": [r.as_dict(ctx.run.root) for r in records]}, artifacts)

    @staticmethod
    def _write_sidecar(out: Path, label: str, spec, ctx: RunContext) -> None:
        """What a deployer needs beside the file: input name/shape, preprocessing, class names."""
        atomic_write_json(out / f"{label}.json", {
            "model": spec.model, "role": label, "input_name": "input", "output_name": "logits",
            "input_shape": ["batch", 3, spec.input_size, spec.input_size],
            "preprocessing": spec.input, "classes": ctx.data.class_names,
            "quantized": spec.quantization is not None,
        })
