"""The config schema (``model.yaml``), validated with pydantic.

Unknown keys, wrong types and unknown registry names are errors that name the key and
list the valid choices (scikit-learn's parameter-validation habit). Registry components
(losses, data sets, search spaces, importance criteria) are written flat in YAML, e.g.
``{name: kl, temperature: 4, alpha: 0.9}``, and their extra keys are validated against
the parameter model the registered entry declares.

Relative paths are taken relative to the current working directory, like most CLIs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from edgekd.core import registries
from edgekd.core.config_parts import (  # noqa: F401 - re-exported: config.py is where callers import them
    Component,
    DataConfig,
    PreprocessConfig,
    StrictModel,
    _parse_params,
    _registered,
)
from edgekd.core.config_stages import (  # noqa: F401 - re-exported: config.py is where callers import them
    ConstraintsConfig,
    ImportanceRef,
    PruneConfig,
    QuantizeConfig,
    SearchConfig,
    SearchSpaceRef,
    _default_finetune,
    _default_qat,
    over_defaults,
)
from edgekd.core.config_train import (  # noqa: F401 - re-exported: config.py is where callers import them
    AugmentConfig,
    LossTerm,
    OptimizerConfig,
    ScheduleConfig,
    TeacherTrainConfig,
    TrainConfig,
    _default_ce_loss,
    _default_kd_loss,
)

log = logging.getLogger(__name__)

STAGE_ORDER: tuple[str, ...] = ("search", "distill", "prune", "quantize", "export", "bench", "report")
StageName = Literal["search", "distill", "prune", "quantize", "export", "bench", "report"]


class ModelRef(StrictModel):
    """A network: a timm model name or a ``package.module:function`` entry point."""

    model: str = Field(description="timm model name, or 'package.module:function'")
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments for the model's builder (timm.create_model or the "
        "entry point), e.g. {drop_rate: 0.1}; pretrained: true is refused (edgekd never downloads)")
    checkpoint: Path | None = Field(
        None, description="student weights (safetensors or a weights-only state_dict): distill starts from them; "
        "prune and quantize too (or from an edgekd model folder) when the run has no distilled model")


class TeacherConfig(ModelRef):
    """The trained network to distill from: its checkpoint, or how to train it here first."""

    checkpoint: Path | None = Field(
        None, description="the teacher's weights: safetensors or a weights-only state_dict (never unpickled); "
        "with train set and no file there yet, the teacher is trained and saved there")
    train: TeacherTrainConfig | None = Field(
        None, description="train the teacher on the data first (when checkpoint is unset or its file is missing); "
        "null: checkpoint is required")
    expected_accuracy: float | None = Field(
        None, gt=0, le=100, description="validation accuracy the checkpoint reached where it was trained; "
        "edgekd stops (exit 4) when it reads less than this minus accuracy_tolerance")
    accuracy_tolerance: NonNegativeFloat = Field(1.0, description="points below expected_accuracy still accepted")


class RaceConfig(StrictModel):
    """Successive halving over distill's student runs: judged at rungs, the clearly-behind stop."""

    at: list[float] = Field(default_factory=lambda: [0.5], min_length=1,
                            description="rungs, as fractions of distill.epochs, where each run is judged")
    margin: NonNegativeFloat = Field(3.0, description="points of validation accuracy behind the best run so far "
                                     "(at the same epoch) that stop a run at a rung")

    @field_validator("at")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in v):
            raise ValueError(f"rungs are fractions of the epochs, between 0 and 1; got {v}")
        return sorted(v)


class DistillConfig(TrainConfig):
    """Training the student with the teacher's signal (knowledge distillation)."""

    compare_baseline: Literal["auto"] | bool = Field(
        "auto",
        description="also train the student without the teacher on the same budget, report both and ship the "
        "better (KD is never worse than no KD); auto: on for data held in memory, off for streamed folders",
    )
    teacher_pruned: Literal["auto"] | bool = Field(
        "auto",
        description="also train the trained teacher, pruned to the search budget, as a student and continue with "
        "the more accurate of it and the searched one; auto: when the student is searched")
    other_families: bool = Field(
        True, description="when the searched space mixes families (a ViT teacher's ViTs and ResNets), also train "
        "the best-scored candidate of each other family and continue with the most accurate: DisWOT favours "
        "students of the teacher's own family, which are not always the ones that learn best on the data")
    race: RaceConfig | None = Field(
        default_factory=lambda: RaceConfig(), description="race the student runs (sources, with and without the "
        "teacher): a run clearly behind the best at a rung stops there; null: every run trains to the end")


class ExportConfig(StrictModel):
    """The deployable files (ONNX and what the targets run), each checked against PyTorch."""

    formats: list[str] = Field(
        default_factory=list,
        description="formats to export besides ONNX; each target's runtimes add theirs (host: onnx + openvino)",
    )
    precisions: list[Literal["fp32", "fp16"]] = Field(
        default_factory=lambda: ["fp32"],
        description="float precisions for formats that have them (OpenVINO FP16 IR, TensorRT FP16); "
        "INT8 comes from the quantize stage",
    )
    opset: int = Field(
        17, ge=11, le=21, description="ONNX opset to export with; lowered to the highest a target's runtime takes")
    atol: PositiveFloat = Field(
        1e-3, description="FP32 artifacts: largest logit difference from PyTorch accepted")
    min_top1_agreement: float = Field(
        0.99, ge=0, le=1, description="FP32 artifacts: least share of validation images with PyTorch's top-1 class")
    max_accuracy_gap: NonNegativeFloat = Field(
        0.5, description="FP16/INT8 artifacts: max accuracy points lost against the PyTorch model"
    )
    validate_samples: PositiveInt | None = Field(
        None, description="validation images each export is checked on, in its runtime and in PyTorch alike "
        "(default: all; a subset is labelled with its size in the report)")
    engine_batch: PositiveInt = Field(
        1, description="batch size TensorRT engines are optimised for; they take batches up to max(8, this)")
    models: Literal["all", "final"] = Field(
        "all", description="all: every model of the run; final: the teacher and the last model only")

    @field_validator("formats")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _registered(registries.EXPORTERS, "export.formats", v)


class BenchConfig(StrictModel):
    """Timing on this machine: which runtimes, how many calls, how many interleaved rounds."""

    runtimes: list[str] = Field(default_factory=lambda: ["torch", "onnxruntime", "openvino"],
                                description="runtimes to time each file in on this machine (those that run its format)")
    batch_size: PositiveInt = Field(1, description="images per call")
    threads: PositiveInt | None = Field(None, description="CPU threads; default: all cores")
    warmup: int = Field(10, ge=0, description="untimed calls before each timed round")
    repeats: PositiveInt = Field(50, description="timed calls per round")
    rounds: PositiveInt = Field(3, description="interleaved rounds over all models")
    max_rounds: PositiveInt = Field(
        9, description="more rounds follow while a model's spread exceeds stable_spread, up to this many in all")
    timing_cache: bool = Field(True, description="reuse host timings of the same architecture, machine and "
                               "runtimes across runs and stages (budgets, search, the pruned teacher); the bench "
                               "stage always times afresh; the cache is $EDGEKD_CACHE_DIR (~/.cache/edgekd)")
    stable_spread: PositiveFloat = Field(
        0.25, description="a model's timing is stable when the upper / lower quartile of its round medians, minus 1, "
        "is at most this")

    @model_validator(mode="before")
    @classmethod
    def _old_key(cls, data: Any) -> Any:
        """``bench.backends`` is the old name of ``bench.runtimes``: read, with a deprecation message."""
        if isinstance(data, dict) and "backends" in data:
            if "runtimes" in data:
                raise ValueError("bench.backends and bench.runtimes are both set: keep bench.runtimes "
                                 "(backends is its deprecated name)")
            log.warning("bench.backends is deprecated: rename it to bench.runtimes (same values)")
            data = {("runtimes" if k == "backends" else k): v for k, v in data.items()}
        return data

    @field_validator("runtimes")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _registered(registries.RUNTIMES, "bench.runtimes", v)


class ReportConfig(StrictModel):
    """The report files, and how the file shipped on each target is chosen."""

    formats: list[Literal["json", "md", "html"]] = Field(
        default_factory=lambda: ["json", "md", "html"],
        description="report files written: report.json, report.md, report.html"
    )
    accuracy_slack: NonNegativeFloat = Field(
        1.0, description="the file shipped on a target is the fastest inside its latency budget within this many "
        "accuracy points of the most accurate one there (0: the most accurate, whatever its speed)")
    max_accuracy_drop: NonNegativeFloat | None = Field(
        2.0, description="a file shipped on a target is at most this many points below the teacher there; when "
        "nothing in the budget is, the row says so and the run exits 13 (null: no floor)")


class MlflowConfig(StrictModel):
    """Log the run to MLflow: one run, a nested run per stage (edgekd/engines/tracking/mlflow_log.py)."""

    uri: str | None = Field(None, description="tracking URI, e.g. sqlite:///mlflow.db or http://host:5000; "
                            "default: $MLFLOW_TRACKING_URI, else MLflow's own default")
    experiment: str = Field("edgekd", min_length=1, description="MLflow experiment to log to (created if missing)")
    run_name: str | None = Field(None, description="MLflow run name; default: the run's name")
    artifact_location: str | None = Field(None, description="where a new experiment keeps its artifacts")


class TrackingConfig(StrictModel):
    """Where the run is logged besides its run folder."""

    mlflow: MlflowConfig | None = Field(
        None, description="set (even to {}) to track with MLflow: pip install 'edgekd[mlflow]'")


class Config(StrictModel):
    """A whole ``model.yaml``."""

    name: str | None = Field(None, description="run name; default: the YAML file's stem")
    output_dir: Path = Field(
        Path("runs"), description="parent folder of the runs: a run is written to output_dir/name/")
    seed: int = Field(
        0, description="random seed: initial weights, data order, augmentation, search batch and calibration images")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="device for training and evaluation; auto: cuda when a GPU is visible, else cpu")
    threads: PositiveInt | None = Field(None, description="torch CPU threads for training")
    data: DataConfig = Field(
        default_factory=DataConfig, description="where the images come from and how they are prepared")
    teacher: TeacherConfig = Field(description="the trained network to compress: its checkpoint, or how to train it")
    student: ModelRef | None = Field(
        None, description="the network to distill into; null: the search stage chooses it")
    stages: list[StageName] = Field(
        default_factory=lambda: list(STAGE_ORDER),
        description="stages to run, always in this order; the teacher is loaded or trained first when one needs it")
    targets: list[str] = Field(
        default_factory=lambda: ["host"],
        description="devices to compress for: profile names, aliases or profile YAML paths (--target replaces them)")
    search: SearchConfig = Field(
        default_factory=SearchConfig, description="choosing the student's architecture without training")
    distill: DistillConfig = Field(
        default_factory=DistillConfig, description="training the student with the teacher (knowledge distillation)")
    prune: PruneConfig = Field(
        default_factory=PruneConfig, description="channel pruning of the student, fine-tuned with the teacher")
    quantize: QuantizeConfig = Field(
        default_factory=QuantizeConfig, description="INT8 quantization of the student (QAT or PTQ)")
    export: ExportConfig = Field(
        default_factory=ExportConfig, description="the deployable files and their checks against PyTorch")
    bench: BenchConfig = Field(default_factory=BenchConfig, description="latency timing on this machine")
    report: ReportConfig = Field(
        default_factory=ReportConfig, description="the report files and the choice of the file shipped per target")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="experiment tracking (MLflow)")

    @field_validator("stages")
    @classmethod
    def _order(cls, v: list[str]) -> list[str]:
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"stage listed twice: {dup}")
        return [s for s in STAGE_ORDER if s in v]  # stages always run in the fixed order

    @model_validator(mode="after")
    def _student_known(self) -> Config:
        needs = {"distill", "prune", "quantize"} & set(self.stages)
        if self.student is None and "search" not in self.stages and needs:
            raise ValueError(
                "student: missing. Name one (student: {model: mobilenetv3_small_050}) "
                "or add 'search' to stages so it is chosen for you"
            )
        return self

    def training_sections(self) -> dict[str, TrainConfig]:
        """Every training stage's settings, by config key."""
        out = {"distill": self.distill, "prune.finetune": self.prune.finetune, "quantize.train": self.quantize.train}
        return {"teacher.train": self.teacher.train, **out} if self.teacher.train else out
