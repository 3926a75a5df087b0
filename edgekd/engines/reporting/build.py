"""Assembling the report from the stages' sections (reporting/sections.py)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from edgekd.core.hostinfo import CPUINFO, cpuinfo_field
from edgekd.core.version import __version__
from edgekd.engines.models.names import display_name
from edgekd.engines.reporting.choice import choose
from edgekd.engines.reporting.deploy import recommend
from edgekd.engines.reporting.gates import evaluate_gates
from edgekd.engines.reporting.rebase import rebased
from edgekd.engines.reporting.schema import ModelRow, Report
from edgekd.engines.reporting.sections import RunFacts, Section
from edgekd.engines.reporting.verdicts import NOT_STUDENTS


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


def _model_rows(sections: list[Section]) -> list[ModelRow]:
    """Every model the stages produced, in pipeline order, with the bench stage's measured
    parameters/MACs and each export's size and accuracy in its own runtime."""
    rows = [row.model_copy(deep=True) for sec in sections for row in sec.models]
    stats = {label: s for sec in sections for label, s in sec.model_stats.items()}
    for row in rows:
        row.name = row.name or display_name(row.model, row.kwargs)
        s = stats.get(row.label, {}) if row.label not in NOT_STUDENTS[1:] else {}
        row.params = s.get("params", row.params)
        row.macs = s.get("macs", row.macs)
    for e in (e for sec in sections for e in sec.exports):
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


def _merged(sections: list[Section], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sec in sections:
        out.update(getattr(sec, name))
    return out


def training_histories(sections: list[Section]) -> dict[str, list[dict[str, Any]]]:
    """Training curves by model label, in pipeline order (for the HTML report's plots)."""
    return _merged(sections, "histories")


def imported_records(run_root: Path) -> list[dict[str, Any]]:
    """Device-kit measurements imported into the run (``edgekd report RUN --import``)."""
    out = []
    for f in sorted((run_root / "imports").glob("*.json")):
        doc = json.loads(f.read_text())
        for r in doc.get("results", []):
            out.append({**r, "kind": "measured", "source": f"device kit ({f.name})"})
    return out


def _training_device(facts: RunFacts) -> str:
    """The device(s) the training stages ran on, as recorded when each ran (a resumed run
    may have trained its teacher on cuda and runs the rest on cpu)."""
    used: dict[str, list[str]] = {}
    for sec in facts.sections:
        device = facts.records.get(sec.stage, {}).get("device")
        if sec.training and device:
            used.setdefault(device, []).append(sec.stage)
    if len(used) <= 1:
        return next(iter(used), facts.device)
    return "; ".join(f"{device} ({', '.join(names)})" for device, names in used.items())


def _distributed(facts: RunFacts) -> dict[str, Any]:
    """How many processes trained, and the batch and learning-rate rule (none: the configured
    batch is the global batch, split over the ranks, so one or N processes take the same steps)."""
    worlds = {s: r["world"] for s, r in facts.records.items() if r.get("world")}
    sizes = sorted({w["world_size"] for w in worlds.values()})
    return {"world_size": sizes[-1] if sizes else 1, "per_stage": worlds,
            "batch_rule": "batch_size is the global batch: each of N processes takes batch_size/N images of "
                          "every batch; the learning rate is used as configured (no scaling)"}


def _data(facts: RunFacts) -> dict[str, Any]:
    d = facts.data
    return {"source": d.name, "classes": d.num_classes, "train": d.num_train, "val": d.num_val,
            "image_size": d.image_size, "streamed": not d.in_memory, "preprocess": d.preprocessing(),
            "preprocess_summary": d.preprocess.describe(), "preprocess_sources": dict(d.preprocess.sources),
            "notes": list(facts.data_notes)}


def _targets(facts: RunFacts, latency: list[dict[str, Any]]) -> list[dict[str, Any]]:
    imported = sorted({r["target"] for r in latency} - {t.name for t in facts.targets})
    def budget(t) -> dict[str, Any]:  # noqa: ANN001 - a Profile
        b = facts.budgets.get(t.name)
        if not b:
            return {"latency_budget_ms": t.latency_budget_ms, "budget_basis": f"profile {t.name} latency_budget_ms"}
        return rebased(b, latency, t.name)

    return ([{"name": t.name, "description": t.description, "measured_here": t.measured_here, **budget(t)}
             for t in facts.targets]
            + [{"name": n, "description": "measured with the device kit", "measured_here": False, "imported": True}
               for n in imported])


def build_report(facts: RunFacts) -> Report:
    """A Report from a finished (or partly finished) run's sections."""
    sections = facts.sections
    latency = [r for sec in sections for r in sec.latency] + imported_records(facts.root)
    report = Report(
        edgekd_version=__version__,
        run_name=facts.root.name,
        run_dir=str(facts.root),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        command=facts.command,
        targets=_targets(facts, latency),
        data=_data(facts),
        models=_model_rows(sections),
        latency=latency,
        speedups=_merged(sections, "speedups"),
        choices=choose(latency),
        comparisons=_merged(sections, "comparisons"),
        exports=[e for sec in sections for e in sec.exports],
        search=_merged(sections, "search"),
        pruning=_merged(sections, "pruning"),
        plan=facts.plan.model_dump(mode="json"),
        distillation_effects=_merged(sections, "distillation_effects"),
        stages={sec.stage: {"seconds": facts.records.get(sec.stage, {}).get("seconds"),
                            "resumed": facts.resumed.get(sec.stage, False),
                            "device": facts.records.get(sec.stage, {}).get("device"),
                            **({"world": facts.records[sec.stage]["world"]}
                               if facts.records.get(sec.stage, {}).get("world") else {})} for sec in sections},
        environment={**environment(), "training_device": _training_device(facts),
                     "distributed": _distributed(facts)},
        renders=list(facts.renders),
    )
    # reads the assembled rows: each file's accuracy in its runtime
    report.deployment = recommend(report, facts.accuracy_slack, facts.max_accuracy_drop)
    report.gates = evaluate_gates(report, facts.gates)
    return report
