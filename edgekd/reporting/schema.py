"""The report object ``edgekd.compress`` returns and ``report.json`` holds.

``schema_version`` changes (major) whenever a field is renamed or removed, so MLOps
pipelines that read the JSON can check it. Every latency row carries its kind
(measured / predicted), target, backend, precision, batch size and threads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = "1.3"  # 1.1: + plan; 1.2: + distillation_effects, deployment; 1.3: + gates, renders, models[].name/kwargs


class ModelRow(BaseModel):
    label: str  # teacher | student | pruned | quantized | baseline
    model: str  # what rebuilds it: a timm name or an entry point (module:function)
    name: str = ""  # the same for people: "mobilenetv3 w0.5 d0.75" (edgekd.models.names)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    accuracy: float | None = None  # PyTorch, validation split, percent
    runtime_accuracy: dict[str, float] = Field(default_factory=dict)  # "onnx int8 (onnxruntime)": 97.1
    params: int | None = None
    macs: int | None = None
    size_mb: dict[str, float] = Field(default_factory=dict)  # "onnx fp32": 1.2
    stage: str = ""


class Gate(BaseModel):
    """One CI gate checked on the chosen model of one target (reporting/gates.py)."""

    name: Literal["accuracy", "latency", "accuracy_floor"]
    threshold: float | None  # points (accuracy: at least) or ms (latency: at most); None: no budget known
    value: float | None  # None: nothing to check it on (no latency measured or predicted)
    target: str | None
    passed: bool
    model: str | None = None  # the label of the chosen model (quantized, pruned, student, ...)
    runtime: str = ""  # how it was measured: "onnx int8 (onnxruntime)", "PyTorch", ...
    detail: str = ""


class Report(BaseModel):
    schema_version: str = SCHEMA_VERSION
    edgekd_version: str
    run_name: str
    run_dir: str
    created: str
    command: str = ""
    targets: list[dict[str, Any]] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    models: list[ModelRow] = Field(default_factory=list)
    latency: list[dict[str, Any]] = Field(default_factory=list)
    speedups: dict[str, Any] = Field(default_factory=dict)
    choices: dict[str, Any] = Field(default_factory=dict)  # target -> model -> fastest valid backend/precision
    comparisons: dict[str, Any] = Field(default_factory=dict)
    exports: list[dict[str, Any]] = Field(default_factory=list)
    search: dict[str, Any] = Field(default_factory=dict)  # chosen architecture and the top of the ranking
    pruning: dict[str, Any] = Field(default_factory=dict)  # per-step accuracy / MACs
    plan: dict[str, Any] = Field(default_factory=dict)  # the target-dependent decisions (edgekd/plan.py)
    # beyond top-1 (distill stage): ECE of teacher/student/baseline, per-class accuracy and its changes
    distillation_effects: dict[str, Any] = Field(default_factory=dict)
    # target -> the model file to ship there, its latency and accuracy in its runtime, and why (reporting/deploy.py)
    deployment: dict[str, Any] = Field(default_factory=dict)
    stages: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    gates: list[Gate] = Field(default_factory=list)  # --fail-under-accuracy / --fail-over-latency, if given
    renders: list[dict[str, Any]] = Field(default_factory=list)  # `edgekd report` re-renders: {command, at}
    notes: list[str] = Field(default_factory=list)

    def model(self, label: str) -> ModelRow | None:
        return next((m for m in self.models if m.label == label), None)

    def best_latency(self, label: str, *, kind: str = "measured", target: str = "host") -> dict[str, Any] | None:
        rows = [r for r in self.latency if r["model"] == label and r["kind"] == kind and r["target"] == target]
        return min(rows, key=lambda r: r["median_ms"]) if rows else None

    def choice(self, target: str) -> dict[str, Any]:
        """``choices`` of one target, named by its name or an alias (``jetson`` → ``jetson-orin-nano``)."""
        if target in self.choices:
            return self.choices[target]
        from edgekd.core.profiles import resolve_target

        name = resolve_target(target)[0].name  # ProfileError (exit 10) for an unknown name
        if name not in self.choices:
            raise KeyError(f"{target!r} ({name}) is not a target of this report; it has {sorted(self.choices)}")
        return self.choices[name]

    def failed_gates(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of report.json (``edgekd report --schema``; a copy in docs/report.schema.json)."""
    schema = Report.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": f"edgekd report.json, schema_version {SCHEMA_VERSION}", **schema}
