"""Export: every model of the run (or only the final one) in each configured format.

The teacher is exported too: speed-ups are stated against the teacher on its own best
runtime, not only against PyTorch eager. Each artifact is validated against PyTorch on
real validation images with its own runtime; a mismatch fails the stage (the file stays
for inspection). ``exports.json`` lists what was written, with parity numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.markup import escape

from edgekd.core import registries
from edgekd.core.devicekit import KIT_NAME, kit_path
from edgekd.core.errors import ExportError
from edgekd.core.rundir import atomic_path, atomic_write_json
from edgekd.engines.exporters.base import Exported, ExportJob
from edgekd.engines.models.artifact import load_model
from edgekd.engines.reporting.sections import Section
from edgekd.engines.train.evaluate import predict_logits
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext
from edgekd.stages.outputs import ExportOutput

VALIDATION_BUNDLE = 256  # images shipped with the exports so the device kit can check accuracy on the device


class ExportStage(Stage):
    name = "export"

    def settings(self, ctx: RunContext) -> Any:
        return {"export": ctx.config.export.model_dump(mode="json"),
                "targets": [t.model_dump(mode="json") for t in ctx.targets]}  # the plan derives from both

    def section(self, result: StageResult) -> Section:
        assert isinstance(result.output, ExportOutput)
        return Section(stage="export", exports=result.output.exports)

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.export
        formats, required = ctx.plan.export_formats, ctx.plan.required_formats
        models = ctx.model_dirs()
        if cfg.models == "final" and len(models) > 2:
            last = list(models)[-1]
            models = {"teacher": models["teacher"], last: models[last]} if "teacher" in models else {last: models[last]}
        records: list[Exported] = []
        artifacts: dict[str, Path] = {}
        images, vy = ctx.data.val_images(VALIDATION_BUNDLE)
        bundle = {"inputs": ctx.data.normalize(images).cpu().numpy().astype(np.float32), "labels": vy.cpu().numpy(),
                  "images": images.cpu().numpy(),  # uint8, after resize/crop: the kit normalises them itself
                  "preprocessing": np.array(json.dumps(ctx.data.preprocessing()))}
        with ctx.reporter.task("export", total=len(models) * len(formats)) as advance:
            for label, folder in models.items():
                model, spec = load_model(folder)
                model = model.cpu()  # exports are traced and validated on the CPU
                ref = predict_logits(model, ctx.data, torch.device("cpu"), limit=cfg.validate_samples)
                job = ExportJob(label, model, spec, ctx.data, out, cfg, ctx.plan, ref)
                for fmt in formats:
                    exporter = registries.EXPORTERS.get(fmt, key="export.formats")()
                    try:
                        done = exporter.export(job)
                    except ExportError as exc:
                        if fmt in required:
                            raise
                        done = [Exported(label, fmt, "int8" if job.quantized else "fp32", None, "failed",
                                         note=f"{exc.message} ({exc.hint})" if exc.hint else exc.message)]
                    job.previous.extend(done)
                    records.extend(done)
                    advance(1, status=f"{label} {fmt}")
                self._write_sidecar(out, label, spec, ctx)
                artifacts[f"meta:{label}"] = out / f"{label}.json"
                bundle[f"logits_{label}"] = ref[:VALIDATION_BUNDLE].numpy()
        for r in records:
            if r.path is not None and r.path.exists():
                artifacts[f"{r.format}:{r.model}:{r.precision}"] = r.path
        atomic_write_json(out / "exports.json", [r.as_dict(ctx.run.root) for r in records])
        artifacts["exports"] = out / "exports.json"
        with atomic_path(out / "validation.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **bundle)  # for the device kit: accuracy measured on the device
        artifacts["validation"] = out / "validation.npz"
        shutil.copy2(kit_path(), out / KIT_NAME)  # the folder is all a device needs
        artifacts["kit"] = out / KIT_NAME
        for r in records:
            p = r.parity
            if r.status == "failed":
                ctx.reporter.line(f"[red]export[/]: {r.model} {r.format} {r.precision}: validation failed "
                                  f"(optional for these targets, skipped): {escape(r.note.split(' (')[0])}")
                continue
            if r.status == "deferred":
                ctx.reporter.line(f"[yellow]export[/]: {r.model} {r.format} {r.precision}: {escape(r.note.split(';')[0])}; "
                                  f"on the device, in {escape(out.name)}/: {escape(r.command or '')}")
                continue
            acc = f"{p['accuracy']:.2f}% (torch {p['torch_accuracy']:.2f}%)" if p else r.status
            fallback = f" ({escape(r.note)})" if r.note.startswith("dynamo exporter") else ""
            ctx.reporter.line(f"[green]export[/]: {r.model} {r.format} {r.precision}: {acc}{fallback}")
        return StageResult(ExportOutput(exports=[r.as_dict(ctx.run.root) for r in records]), artifacts)

    @staticmethod
    def _write_sidecar(out: Path, label: str, spec, ctx: RunContext) -> None:
        """What a deployer needs beside the file: input name/shape, preprocessing, class names."""
        atomic_write_json(out / f"{label}.json", {
            "model": spec.model, "role": label, "input_name": "input", "output_name": "logits",
            "input_shape": ["batch", 3, spec.input_size, spec.input_size],
            "preprocessing": spec.input, "classes": ctx.data.class_names,
            "quantized": spec.quantization is not None,
        })
