"""Bench: latency of every model of the run on every target, labelled measured or predicted.

On ``host`` each model is measured in PyTorch eager and in every exported format with
the runtimes that run it, side by side (interleaved rounds). Other targets get roofline
predictions from the exported ONNX graphs. (Measurements from the device kit are merged
by the report, ``edgekd report RUN --import results.json``.) For each target and model
the fastest valid (runtime, precision) is chosen, with the alternatives kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.markup import escape

from edgekd.core.errors import BenchError
from edgekd.core.rundir import atomic_write_json
from edgekd.engines.latency.measure import BenchItem, LatencyRecord, measure_items, speedups
from edgekd.engines.latency.predict import predict_records
from edgekd.engines.models.artifact import load_model
from edgekd.engines.models.stats import model_stats
from edgekd.engines.reporting.sections import Section
from edgekd.engines.runtimes.base import runtimes_for
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext
from edgekd.stages.outputs import BenchOutput


def _exports(ctx: RunContext) -> list[dict[str, Any]]:
    if "export" in ctx.results and "exports" in ctx.results["export"].artifacts:
        return json.loads(Path(ctx.results["export"].artifacts["exports"]).read_text())
    return []


def bench_items(ctx: RunContext, runtimes: list[str]) -> list[BenchItem]:
    """What to time on host: each model's torch artifact and its valid exports, with each able runtime."""
    items: list[BenchItem] = []
    exports = _exports(ctx)
    for label, folder in ctx.model_dirs().items():
        if label != "quantized":  # a fake-quantized torch model is a simulation, not a deployment
            for b in runtimes_for("torch", runtimes):
                items.append(BenchItem(label, "torch", "fp32", folder, b.name))
                if torch.cuda.is_available():  # the host's GPU: FP16, replayed as a CUDA graph
                    items.append(BenchItem(label, "torch", "fp16", folder, b.name, device="cuda"))
        for e in exports:
            if e["model"] == label and e["status"] == "ok" and e["path"]:
                for b in runtimes_for(e["format"], runtimes):
                    items.append(BenchItem(label, e["format"], e["precision"], ctx.run.root / e["path"], b.name))
    return items


class BenchStage(Stage):
    name = "bench"

    def settings(self, ctx: RunContext) -> Any:
        return {"bench": ctx.config.bench.model_dump(mode="json"),
                "targets": [t.model_dump(mode="json") for t in ctx.targets]}

    def section(self, result: StageResult) -> Section:
        m = result.output
        assert isinstance(m, BenchOutput)
        return Section(stage="bench", latency=m.latency, speedups=m.speedups, model_stats=m.models)

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.bench
        records: list[LatencyRecord] = []
        x, _ = ctx.data.val_inputs(cfg.batch_size)
        x_np = np.ascontiguousarray(x.cpu().numpy().astype(np.float32))
        if x_np.shape[0] < cfg.batch_size:  # tiny validation sets: repeat images up to the batch
            x_np = np.resize(x_np, (cfg.batch_size, *x_np.shape[1:]))
        exports = _exports(ctx)
        for target in ctx.targets:
            if target.measured_here:
                items = bench_items(ctx, cfg.runtimes)
                if not items:
                    raise BenchError("nothing to benchmark: no models in this run",
                                     hint="add 'distill' (and 'export') to stages")
                ctx.reporter.line(f"[cyan]bench[/]: measuring {len(items)} model/runtime pairs on {escape(target.name)}")
                records += measure_items(items, x_np, cfg, target=target.name, reporter=ctx.reporter)
                continue
            for e in exports:
                if e["format"] == "onnx" and e["status"] == "ok":
                    records += predict_records(e["model"], ctx.run.root / e["path"], target,
                                               quantized=e["precision"] == "int8", batch=cfg.batch_size)
            ctx.reporter.line(f"[cyan]bench[/]: predicted latency on {escape(target.name)} (roofline; "
                              "import device-kit results to measure it)")
        rows = [r.as_dict() for r in records]
        stats = {}
        for label, folder in ctx.model_dirs().items():
            model, spec = load_model(folder)
            stats[label] = model_stats(model, spec.input_size)
        summary = speedups([r for r in records if r.kind == "measured" and r.target == "host"])
        atomic_write_json(out / "latency.json", rows)
        for label, row in summary.items():
            if label != "teacher_best" and "speedup_vs_teacher_best" in row:
                ctx.reporter.line(
                    f"[green]bench[/]: {label} {row['best_median_ms']:.3f} ms ({row['best_runtime']} {row['best_precision']}), "
                    f"{row['speedup_vs_teacher_best']:.1f}× vs teacher's best, "
                    f"{row.get('speedup_vs_teacher_eager', float('nan')):.1f}× vs teacher eager")
        return StageResult(BenchOutput(latency=rows, speedups=summary, models=stats),
                           {"latency": out / "latency.json"})
