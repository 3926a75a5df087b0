"""The report object ``edgekd.compress`` returns and ``report.json`` holds.

``schema_version`` changes (major) whenever a field is renamed or removed, so MLOps
pipelines that read the JSON can check it. Every latency row carries its kind
(measured / predicted), target, runtime, precision, batch size and threads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# 1.1: + plan; 1.2: + distillation_effects, deployment; 1.3: + gates, renders, models[].name/kwargs;
# 1.4: targets, choices and deployment typed; deployment: file/source_file/built_on_device/description,
# accuracy_floor, missed_budget; targets[].budget; gates: accuracy_floor
# 2.0: "backend" is "runtime" everywhere (rows, choices, deployment; best_backend → best_runtime,
# backend_version → runtime_version)
SCHEMA_VERSION = "2.0"


class Row(BaseModel):
    """A typed row that also reads like a mapping: ``row["median_ms"]``, ``row.get("kind")``.
    Fields a later edgekd adds are kept (``extra``), so an older reader loads a newer report."""

    model_config = ConfigDict(extra="allow")

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in type(self).model_fields or key in (self.model_extra or {}))

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self else default

    def keys(self) -> list[str]:
        return list(self.model_dump())


class ByTarget(dict):
    """``{target: row}`` that also answers to a target's alias (``jetson`` → ``jetson-orin-nano``)."""

    def __missing__(self, key: str) -> Any:
        from edgekd.core.errors import ProfileError
        from edgekd.core.profiles import resolve_target

        try:
            name = resolve_target(key)[0].name
        except ProfileError:
            raise KeyError(key) from None
        if name == key or name not in self:
            raise KeyError(f"{key!r} ({name}) is not a target of this report; it has {sorted(self)}")
        return self[name]


class BudgetSummary(Row):
    """What was asked on a target and what it reaches (edgekd/engines/budgets/)."""

    asked_ms: float | None = None
    asked_speedup: float | None = None
    limit_ms: float | None = None  # the limit in force (rebased on the teacher timed in this run's bench)
    speedup: float | None = None  # the speed-up over the teacher that limit means
    wall: bool = False  # a number the user wrote (a hard constraint)
    lowered: bool = False  # a default out of reach here, lowered to what the target reaches
    reachable_ms: float | None = None
    reachable_speedup: float | None = None
    reach_kind: str | None = None
    why: str | None = None


class TargetRow(Row):
    name: str
    description: str = ""
    measured_here: bool = False
    imported: bool = False  # only the device kit's imported rows name it
    latency_budget_ms: float | None = None
    budget_basis: str | None = None
    speedup_budget: float | None = None
    teacher_latency: dict[str, Any] | None = None
    budget: BudgetSummary | None = None
    budget_ms_at_search: float | None = None
    teacher_bench: dict[str, Any] | None = None


class ChoiceRow(Row):
    """A model's fastest valid runtime and precision on one target (latency/choice.py)."""

    runtime: str
    precision: str
    format: str
    median_ms: float
    kind: Literal["measured", "predicted"]
    lead: float | None = None
    close_call: bool = False
    alternatives: list[dict[str, Any]] = Field(default_factory=list)


class TeacherBest(Row):
    runtime: str
    precision: str
    median_ms: float
    kind: Literal["measured", "predicted"]
    accuracy: float | None = None


class AccuracyFloor(Row):
    max_drop: float
    teacher: float | None
    floor: float
    met: bool


class Deployment(Row):
    """The file to ship on one target, how it runs there, and why (reporting/deploy.py)."""

    model: str
    file: str | None  # relative to the run folder; an engine built on the device: where the kit writes it
    source_file: str | None = None  # what a device-built file is built from (the ONNX file of an engine)
    build_command: str | None = None
    built_on_device: bool = False
    description: str = ""
    runtime: str
    format: str
    precision: str
    median_ms: float
    kind: Literal["measured", "predicted"]
    accuracy: float | None
    accuracy_source: str = ""
    accuracy_samples: int | None = None
    budget_ms: float | None = None
    budget_basis: str | None = None
    reason: str = ""
    teacher_best: TeacherBest | None = None
    speedup_vs_teacher_best: float | None = None
    did_not_pay: list[dict[str, Any]] = Field(default_factory=list)  # slower and not more accurate: never shipped
    slower_than_input: list[dict[str, Any]] = Field(default_factory=list)  # slower but more accurate: a trade-off
    timings_unstable: str | None = None
    missed_budget: list[dict[str, Any]] = Field(default_factory=list)
    accuracy_floor: AccuracyFloor | None = None


class ModelRow(BaseModel):
    label: str  # teacher | student | pruned | quantized | baseline
    model: str  # what rebuilds it: a timm name or an entry point (module:function)
    name: str = ""  # the same for people: "mobilenetv3 w0.5 d0.75" (edgekd.engines.models.names)
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
    model_config = ConfigDict(validate_assignment=True)  # report.deployment = recommend(...) is typed too

    schema_version: str = SCHEMA_VERSION
    edgekd_version: str
    run_name: str
    run_dir: str
    created: str
    command: str = ""
    targets: list[TargetRow] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    models: list[ModelRow] = Field(default_factory=list)
    latency: list[dict[str, Any]] = Field(default_factory=list)
    speedups: dict[str, Any] = Field(default_factory=dict)
    # target -> model -> fastest valid runtime/precision; a target's alias works too
    choices: Annotated[dict[str, dict[str, ChoiceRow]], AfterValidator(ByTarget)] = Field(default_factory=ByTarget)
    comparisons: dict[str, Any] = Field(default_factory=dict)
    exports: list[dict[str, Any]] = Field(default_factory=list)
    search: dict[str, Any] = Field(default_factory=dict)  # chosen architecture and the top of the ranking
    pruning: dict[str, Any] = Field(default_factory=dict)  # per-step accuracy / MACs
    plan: dict[str, Any] = Field(default_factory=dict)  # the target-dependent decisions (edgekd/engines/plan/deployment.py)
    # beyond top-1 (distill stage): ECE of teacher/student/baseline, per-class accuracy and its changes
    distillation_effects: dict[str, Any] = Field(default_factory=dict)
    # target -> the model file to ship there, its latency and accuracy in its runtime, and why (reporting/deploy.py)
    deployment: Annotated[dict[str, Deployment], AfterValidator(ByTarget)] = Field(default_factory=ByTarget)
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
