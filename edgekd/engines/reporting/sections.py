"""What each stage contributes to the report, typed.

Every stage turns its own (persisted) metrics into a :class:`Section` (``Stage.section``),
so the report is assembled from sections instead of reading stage metrics by string keys;
a resumed stage gives the same section from its manifest record. The assembler
(reporting/build.py) only merges: models in pipeline order, exports and bench statistics
onto the model rows, comparisons, latency rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from edgekd.core.config import ReportConfig
from edgekd.core.profiles import Profile
from edgekd.engines.data.bundle import Data
from edgekd.engines.plan.deployment import RunPlan
from edgekd.engines.reporting.gates import GateSpec
from edgekd.engines.reporting.schema import ModelRow


class Section(BaseModel):
    """One stage's part of the report (every field optional: a stage fills what it has)."""

    stage: str
    training: bool = False  # a training stage: its device is reported
    models: list[ModelRow] = Field(default_factory=list)
    histories: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # curves by model label
    comparisons: dict[str, Any] = Field(default_factory=dict)  # e.g. {"distillation": {...}}
    search: dict[str, Any] = Field(default_factory=dict)
    pruning: dict[str, Any] = Field(default_factory=dict)
    exports: list[dict[str, Any]] = Field(default_factory=list)
    latency: list[dict[str, Any]] = Field(default_factory=list)
    speedups: dict[str, Any] = Field(default_factory=dict)
    model_stats: dict[str, dict[str, Any]] = Field(default_factory=dict)  # measured params/MACs by label
    distillation_effects: dict[str, Any] = Field(default_factory=dict)  # ECE, per-class accuracy (distill)


def student_names(shipped: str) -> dict[str, str]:
    """What the two students of distill are called everywhere (tables, curves, effects, model rows):
    ``student`` is always the one shipped; the other says what it is: ``student (KD)`` when the student
    trained without the teacher shipped, ``student (no teacher)`` when the distilled one did."""
    if shipped == "plain":
        return {"with_teacher": "student (KD)", "without_teacher": "student"}
    return {"with_teacher": "student", "without_teacher": "student (no teacher)"}


def trained_model_section(stage: str, label: str, metrics: dict[str, Any], *,
                          comparison_key: str | None = None) -> Section:
    """The section of a stage that trains one model (teacher, prune, quantize)."""
    row = ModelRow(label=label, model=metrics.get("model", ""), kwargs=metrics.get("kwargs") or {},
                   accuracy=metrics.get("accuracy"),
                   params=metrics.get("params"), macs=metrics.get("macs"), stage=stage)
    sec = Section(stage=stage, training=True, models=[row])
    if metrics.get("history"):
        sec.histories[label] = metrics["history"]
    if comparison_key and "comparison" in metrics:
        sec.comparisons[comparison_key] = metrics["comparison"]
    return sec


@dataclass
class RunFacts:
    """Everything the report is built from: the run's identity, inputs and stage sections."""

    root: Path
    command: str
    targets: list[Profile]
    data: Data
    data_notes: list[str]
    plan: RunPlan
    device: str  # the device this invocation trains on
    sections: list[Section] = field(default_factory=list)  # in pipeline order
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # manifest records by stage
    resumed: dict[str, bool] = field(default_factory=dict)  # stage restored from the manifest
    gates: GateSpec = field(default_factory=GateSpec)  # CI gates to check (none by default)
    renders: list[dict[str, Any]] = field(default_factory=list)  # `edgekd report` re-renders of this run
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> TargetBudget.as_dict()
    accuracy_slack: float = ReportConfig.model_fields["accuracy_slack"].default  # points given up for the fastest file
    max_accuracy_drop: float | None = ReportConfig.model_fields["max_accuracy_drop"].default  # the floor under the teacher
