"""What each stage leaves for the stages after it and for the report: one typed output per stage.

A stage builds its output, and the manifest stores it (``--resume`` reads it back through
the same type). Other stages read it by attribute (``ctx.output(TeacherOutput).accuracy``),
so a renamed field breaks at type-check time and at validation, never silently in the report.
Fields a stage did not set stay unset: the manifest keeps only what the stage wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from edgekd.core.estimates import renamed

Row = dict[str, Any]


class StageOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: ClassVar[str] = ""

    def as_dict(self) -> dict[str, Any]:
        """What the manifest and the tracker record: the fields the stage set."""
        return self.model_dump(mode="json", exclude_unset=True)


class TrainedModel(StageOutput):
    """A model a stage trained or read: its name, accuracy, curve and size."""

    model: str = ""
    kwargs: dict[str, Any] = {}
    accuracy: float | None = None
    best_epoch: int | None = None
    final_accuracy: float | None = None
    train_seconds: float | None = None
    images_per_second: float | None = None
    history: list[Row] | None = None
    training_recipe: Row | None = None
    params: int | None = None
    params_m: float | None = None
    macs: int | None = None
    macs_m: float | None = None


class TeacherOutput(TrainedModel):
    stage: ClassVar[str] = "teacher"
    source: str = ""
    preprocess: dict[str, Any] = {}
    checkpoint_written_sha256: str | None = None


class SearchOutput(StageOutput):
    stage: ClassVar[str] = "search"
    space: str = ""
    space_size: int | None = None
    strategy: str = ""
    evaluated: int = 0
    feasible: int = 0
    seconds: float = 0.0
    seconds_per_candidate: float | None = None
    score: str = ""
    budgets: dict[str, Any] = {}
    normalizer: dict[str, Any] | None = None
    chosen: dict[str, Any] | None = None
    top: list[Row] = []
    front: dict[str, Any] | None = None
    teacher_point: dict[str, Any] | None = None
    points: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None  # how many candidates were timed on host, how many predicted, the fit


class DistillOutput(TrainedModel):
    stage: ClassVar[str] = "distill"
    source: str = ""
    loss: list[Any] = []
    teacher_accuracy: float | None = None
    kd_accuracy: float | None = None
    shipped: str = "kd"  # kd | plain: whether the shipped student learned from the teacher
    sources: dict[str, Any] = {}
    notes: list[str] = []
    baseline: dict[str, Any] | None = None
    kd_gain: float | None = None
    kd: dict[str, Any] | None = None
    side_model: dict[str, Any] | None = None
    effects: dict[str, Any] | None = None
    race: dict[str, Any] | None = None  # the race of the student runs: rule, every curve, where each stopped
    stopped: dict[str, Any] | None = None  # the shipped run's own stop (a race never stops the leader)
    teacher_forwards: dict[str, int] | None = None  # teacher batches computed, and reused by later KD runs


class PruneOutput(TrainedModel):
    stage: ClassVar[str] = "prune"
    input: str = ""
    target: dict[str, Any] = {}
    importance: dict[str, Any] | str = {}
    finetune_loss: list[Any] = []
    base: dict[str, Any] = {}
    macs_reduction: float | None = None
    params_reduction: float | None = None
    steps: list[Row] = []
    stopped: dict[str, Any] | None = None
    channel_rounding: int | None = None
    steps_summary: dict[str, Any] = {}
    finetune_adapted: str | None = None


class QuantizeOutput(TrainedModel):
    stage: ClassVar[str] = "quantize"
    input: str = ""
    method: str = ""
    preset: str = ""
    per_channel: bool | None = None
    overflow_fix: str | None = None
    overflow_fix_reason: str | None = None
    ignored_scope: list[Any] = []
    nncf_kernels: str | None = None
    batchnorm_folded: int = 0
    calibration_images: int | None = None
    fp32_accuracy: float | None = None
    ptq_accuracy: float | None = None
    loss_adapted: str | None = None
    loss: list[Any] = []
    kept: str = ""
    qat_accuracy: float | None = None
    reason: str = ""
    quantizers: int | None = None
    comparison: dict[str, Any] = {}


class ExportOutput(StageOutput):
    stage: ClassVar[str] = "export"
    exports: list[Row] = []


class BenchOutput(StageOutput):
    stage: ClassVar[str] = "bench"
    latency: list[Row] = []
    speedups: dict[str, Any] = {}
    models: dict[str, Any] = {}


class ReportOutput(StageOutput):
    stage: ClassVar[str] = "report"
    files: dict[str, str] = {}


OUTPUTS: dict[str, type[StageOutput]] = {o.stage: o for o in (
    TeacherOutput, SearchOutput, DistillOutput, PruneOutput, QuantizeOutput, ExportOutput, BenchOutput, ReportOutput)}


@dataclass
class StageResult:
    output: StageOutput  # the stage's typed output (the manifest records it as the stage's metrics)
    artifacts: dict[str, Path] = field(default_factory=dict)
    skipped: bool = False  # restored from the manifest by --resume


def read_output(stage: str, recorded: dict[str, Any]) -> StageOutput:
    """A stage's output as the manifest recorded it, validated by its type."""
    kind = OUTPUTS.get(stage)
    if kind is None:
        raise KeyError(f"no output type for stage {stage!r}")
    return kind.model_validate(renamed(recorded))
