"""Assembling the report from the run's stage results."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from edgekd import __version__
from edgekd.core.hostinfo import CPUINFO, cpuinfo_field
from edgekd.latency.choice import choose
from edgekd.reporting.schema import ModelRow, Report

STAGE_OF = {"teacher": "teacher", "student": "distill", "baseline": "distill", "pruned": "prune", "quantized": "quantize"}


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    for mod in ("torch", "timm", "onnx", "onnxruntime", "openvino", "nncf", "torch_pruning", "tensorrt"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except Exception:  # optional packages: absent is fine, broken is reported as absent
                continue
        env[mod] = getattr(m, "__version__", "?")
    if CPUINFO.exists():
        env["cpu"] = cpuinfo_field("model name") or ""
    import torch

    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def _model_rows(results: dict[str, Any]) -> list[ModelRow]:
    rows: list[ModelRow] = []
    metrics = {name: r.metrics for name, r in results.items()}
    stats = metrics.get("bench", {}).get("models", {})
    for label, stage in STAGE_OF.items():
        m = metrics.get(stage)
        if not m:
            continue
        if label == "baseline":
            if "baseline" not in m:
                continue
            rows.append(ModelRow(label="baseline", model=m["model"], accuracy=m["baseline"]["accuracy"],
                                 params=m.get("params"), macs=m.get("macs"), stage="distill (no teacher)"))
            continue
        s = stats.get(label, {})
        rows.append(ModelRow(label=label, model=m.get("model", ""), accuracy=m.get("accuracy"),
                             params=s.get("params", m.get("params")), macs=s.get("macs", m.get("macs")), stage=stage))
    for e in metrics.get("export", {}).get("exports", []):
        row = next((r for r in rows if r.label == e["model"]), None)
        if row is None:
            continue
        key = f"{e['format']} {e['precision']}"
        if e.get("size_mb") is not None:
            row.size_mb[key] = e["size_mb"]
        if e.get("parity"):
            runtime = e["parity"].get("runtime", "").split(" ")[0]
            row.runtime_accuracy[f"{key} ({runtime})"] = e["parity"]["accuracy"]
    return rows


def _comparisons(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    d = results.get("distill")
    if d is not None and "baseline" in d.metrics:
        m = d.metrics
        out["distillation"] = {
            "student": m["model"], "with_teacher": m["accuracy"], "without_teacher": m["baseline"]["accuracy"],
            "gain_points": m["kd_gain"], "teacher": m.get("teacher_accuracy"), "epochs": len(m["history"]),
        }
    for name in ("search", "prune", "quantize"):
        r = results.get(name)
        if r is not None and "comparison" in r.metrics:
            out[name] = r.metrics["comparison"]
    return out


def _search(results: dict[str, Any]) -> dict[str, Any]:
    r = results.get("search")
    if r is None:
        return {}
    keep = ("space", "space_size", "strategy", "evaluated", "feasible", "seconds", "seconds_per_candidate",
            "score", "budgets", "normalizer", "chosen", "top")
    return {k: r.metrics.get(k) for k in keep}


def imported_records(run_root: Path) -> list[dict[str, Any]]:
    """Device-kit measurements imported into the run (``edgekd report RUN --import``)."""
    out = []
    for f in sorted((run_root / "imports").glob("*.json")):
        doc = json.loads(f.read_text())
        for r in doc.get("results", []):
            out.append({**r, "kind": "measured", "source": f"device kit ({f.name})"})
    return out


TRAINING_STAGES = ("teacher", "distill", "prune", "quantize")


def _training_device(ctx: Any) -> str:
    """The device(s) the training stages ran on, as recorded when each ran (a resumed run
    may have trained its teacher on cuda and runs the rest on cpu)."""
    stages = ctx.run.manifest["stages"]
    used: dict[str, list[str]] = {}
    for name in TRAINING_STAGES:
        device = stages.get(name, {}).get("device")
        if name in ctx.results and device:
            used.setdefault(device, []).append(name)
    if len(used) <= 1:
        return next(iter(used), str(ctx.device))
    return "; ".join(f"{device} ({', '.join(names)})" for device, names in used.items())


def build_report(ctx: Any, command: str = "") -> Report:
    """A Report from a finished (or partly finished) run context."""
    results = ctx.results
    data = ctx.data
    bench = results.get("bench")
    latency = (bench.metrics.get("latency", []) if bench else []) + imported_records(ctx.run.root)
    imported_targets = sorted({r["target"] for r in latency} - {t.name for t in ctx.targets})
    return Report(
        edgekd_version=__version__,
        run_name=ctx.run.root.name,
        run_dir=str(ctx.run.root),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        command=command,
        targets=[{"name": t.name, "description": t.description, "measured_here": t.measured_here,
                  "latency_budget_ms": t.latency_budget_ms} for t in ctx.targets]
        + [{"name": n, "description": "measured with the device kit", "measured_here": False, "imported": True}
           for n in imported_targets],
        data={"source": data.name, "classes": data.num_classes, "train": data.num_train,
              "val": data.num_val, "image_size": data.image_size,
              "streamed": not data.in_memory, "preprocess": data.preprocessing(),
              "preprocess_summary": data.preprocess.describe(),
              "preprocess_sources": dict(data.preprocess.sources), "notes": list(ctx.data_notes)},
        models=_model_rows(results),
        latency=latency,
        speedups=bench.metrics.get("speedups", {}) if bench else {},
        choices=choose(latency),
        comparisons=_comparisons(results),
        exports=results["export"].metrics.get("exports", []) if "export" in results else [],
        search=_search(results),
        pruning=results["prune"].metrics.get("steps_summary", {}) if "prune" in results else {},
        stages={name: {"seconds": ctx.run.manifest["stages"].get(name, {}).get("seconds"), "resumed": r.skipped,
                       "device": ctx.run.manifest["stages"].get(name, {}).get("device")}
                for name, r in results.items()},
        environment={**environment(), "training_device": _training_device(ctx)},
    )
