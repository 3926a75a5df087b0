"""The settings of the compression stages that choose and shrink the student: search (space,
budgets, evolution), prune (target, importance, fine-tune) and quantize (INT8, QAT)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from edgekd.core import registries
from edgekd.core.config_parts import Component, StrictModel
from edgekd.core.config_train import OptimizerConfig, TrainConfig
from edgekd.core.registry import Registry


class SearchSpaceRef(Component):
    """A search space by name, with its own parameters."""

    registry: ClassVar[Registry] = registries.SEARCH_SPACES


class ConstraintsConfig(StrictModel):
    """Budgets a candidate must meet on every target: latency, parameters and multiply-adds.

    The latency budget is relative to the teacher by default (``speedup``: its latency on the
    target's best runtime / k); ``latency_ms`` replaces it with an absolute limit."""

    speedup: PositiveFloat | dict[str, PositiveFloat] | None = Field(
        4.0, description="latency on each target at most the teacher's latency there (best runtime; measured on "
        "host, predicted elsewhere) divided by this; per target: {jetson-orin-nano: 2, default: 4} (a GPU at "
        "batch 1 has a latency floor small models cannot go under); null: the target profile's latency_budget_ms")
    latency_ms: PositiveFloat | None = Field(
        None, description="absolute latency budget in ms on every target (wins over speedup)")
    max_params_m: PositiveFloat | None = Field(None, description="at most this many million parameters")
    max_macs_m: PositiveFloat | None = Field(None, description="at most this many million multiply-adds")

    @field_validator("speedup")
    @classmethod
    def _speedup_keys(cls, v: Any) -> Any:
        """Per-target keys must name a target profile (or alias), or be ``default``."""
        if isinstance(v, dict):
            from edgekd.core.errors import ProfileError
            from edgekd.core.profiles import available_profiles, resolve_target

            for key in v:
                try:
                    if key != "default":
                        resolve_target(key)
                except ProfileError:
                    raise ValueError(f"{key!r} is not a target (keys: a target name or alias, or 'default'; "
                                     f"targets: {', '.join(sorted(available_profiles()))})") from None
        return v


class SearchConfig(StrictModel):
    """Choosing the student's architecture for this teacher without training (DisWOT scores)."""

    space: SearchSpaceRef | None = Field(
        None, description="architectures to choose from (see Components); null: follows the teacher's family "
        "(residual: resnet; inverted residual: mobilenetv3 and efficientnet, searched together; other families: "
        "resnet)")
    strategy: Literal["auto", "evolution", "exhaustive"] = Field(
        "auto", description="evolution: score at most population × (generations + 1) candidates; exhaustive: "
        "score every architecture in the space; auto: exhaustive when the space is no larger than that")
    population: PositiveInt = Field(
        24, description="evolution: candidates in each generation (the first drawn at random, later ones bred)")
    generations: PositiveInt = Field(8, description="evolution: generations of children after the first population")
    mutation_prob: float = Field(
        0.3, ge=0, le=1, description="evolution: chance each gene of a child is redrawn (at least one always is)")
    crossover_prob: float = Field(
        0.5, ge=0, le=1, description="evolution: chance a child mixes the genes of two parents instead of one")
    tournament: PositiveInt = Field(
        4, description="evolution: candidates drawn to pick each parent, the fittest wins (more: greedier)")
    batch_size: PositiveInt = Field(
        64, description="training images in the one fixed batch every candidate is scored on")
    score: Literal["diswot", "semantic", "relation"] = Field(
        "diswot", description="diswot: semantic and relation distance to the teacher, each divided by its median, "
        "summed; semantic or relation: that term alone")
    constraints: ConstraintsConfig = Field(
        default_factory=ConstraintsConfig, description="budgets a candidate must meet on every target")
    timing: Literal["selective", "all"] = Field(
        "selective", description="selective: predict every candidate's host latency from a fit to a timed sample "
        "and time in the runtime only those that can change the pick or lie on the score/latency front; all: "
        "time every candidate within the size caps")
    top_k: PositiveInt = Field(10, description="best candidates listed in the report's search table")


class ImportanceRef(Component):
    """A pruning importance criterion by name, with its own parameters."""

    registry: ClassVar[Registry] = registries.IMPORTANCES


def _default_finetune() -> TrainConfig:
    return TrainConfig(epochs=5, optimizer=OptimizerConfig(lr=0.01))


class PruneConfig(StrictModel):
    """Channel pruning of the student to one target (flops_ratio, params_ratio, latency_ms or speedup), in steps."""

    flops_ratio: PositiveFloat | None = Field(
        2.0, description="prune until MACs fall by this factor (2.0 = half the MACs)"
    )
    params_ratio: PositiveFloat | None = Field(
        None, description="prune until parameters fall by this factor (2.0 = half the parameters)")
    latency_ms: PositiveFloat | None = Field(
        None, description="prune until the latency on the first target is at most this many ms")
    speedup: PositiveFloat | None = Field(
        None, description="prune until the latency on every target is at most the teacher's there / this")
    importance: ImportanceRef = Field(
        default_factory=lambda: ImportanceRef(name="magnitude"),
        description="how channels are ranked for removal: magnitude, taylor or random (see Components)")
    global_pruning: bool = Field(
        False, description="rank channels across all layers at once, so layers lose different shares (false: the "
        "same share in every layer)")
    steps: PositiveInt = Field(
        2, description="cuts on a geometric path to the target, each followed by a fine-tune (more: gentler, slower)")
    ignored_layers: list[str] = Field(
        default_factory=list, description="layers whose channels are kept (model.named_modules() names, globs "
        "allowed); the classifier always is")
    skip_unsupported: bool = Field(
        False, description="keep the channels of layers with their own weights that torch-pruning has no rule for, "
        "instead of letting it guess how to slice them")
    round_to: PositiveInt | None = Field(
        None, description="keep channel counts at multiples of this (default: each target's profile channel_multiple "
        "at its deployed precision, their lcm)")
    latency_check: bool = Field(
        True, description="time the model on every target after each step; a step that is not faster is undone "
        "and pruning stops there")
    finetune: TrainConfig = Field(
        default_factory=_default_finetune, description="fine-tune with the teacher after each cut; in a section "
        "given here, keys left out take the defaults listed under distill (lr 0.05, 10 epochs), not these")

    @model_validator(mode="after")
    def _one_target(self) -> PruneConfig:
        fields = ("flops_ratio", "params_ratio", "latency_ms", "speedup")
        if "flops_ratio" not in self.model_fields_set and (self.params_ratio or self.latency_ms or self.speedup):
            object.__setattr__(self, "flops_ratio", None)
        given = [f for f in fields if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one pruning target of {fields}; got {given or 'none'}")
        for f in ("flops_ratio", "params_ratio"):
            v = getattr(self, f)
            if v is not None and v <= 1.0:
                raise ValueError(f"{f} must be > 1 (2.0 halves the model); got {v}")
        return self


def _default_qat() -> TrainConfig:
    """QAT starts from calibrated ranges on a trained student: small steps (SGD 5e-4, no weight
    decay) for 3 epochs, KD T=4 α=0.9. A larger rate can knock a converged student below its
    calibrated (PTQ) accuracy; a small one stays above it at every epoch (benchmarks/RESULTS.md,
    "QAT recipes from one calibrated student"). The stage keeps PTQ if QAT ends below."""
    return TrainConfig(epochs=3, optimizer=OptimizerConfig(lr=5e-4, weight_decay=0.0))


def over_defaults(defaults: TrainConfig, value: Any) -> Any:
    """A partial section read over the stage's own defaults, not TrainConfig's.

    Why: ``quantize: {train: {epochs: 1}}`` used to give the distill defaults (SGD lr 0.05,
    weight decay 5e-4: 100x the QAT rate), which wrecks a calibrated model. Nested sections
    merge key by key; lists (``loss``) are replaced whole.
    """
    if not isinstance(value, dict):
        return value

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    return merge(defaults.model_dump(exclude_unset=True), value)


class QuantizeConfig(StrictModel):
    """INT8 quantization of the latest student: calibration, then QAT with the teacher (or calibration only)."""

    method: Literal["qat", "ptq"] = Field(
        "qat", description="qat: calibrate then fine-tune with the teacher (the calibrated model is kept when QAT "
        "ends below it); ptq: calibrate only")
    preset: Literal["auto", "tensorrt", "symmetric", "mixed"] = Field(
        "auto", description="tensorrt: symmetric signed INT8 everywhere (TensorRT's rules); symmetric: "
        "symmetric, unsigned after ReLU; mixed: asymmetric activations (often best on CPUs); "
        "auto: tensorrt when a target deploys with TensorRT, else mixed")
    calibration_size: PositiveInt = Field(
        512, description="training images the activation ranges are calibrated on")
    per_channel: bool = Field(True, description="one weight scale per output channel (false: one per layer)")
    ignored_scope: list[str] = Field(default_factory=list, description="layer names kept in float (globs allowed)")
    overflow_fix: Literal["auto", "enable", "first_layer", "disable"] = Field(
        "auto", description="7-bit weights against INT8 saturation on x86 CPUs without VNNI (NNCF overflow_fix); "
        "auto: enable when OpenVINO INT8 runs on such a CPU (a target, or this machine validating the export)")
    fold_batchnorm: bool = Field(
        True, description="fold each BatchNorm into the conv before it first, so ONNX Runtime and TensorRT "
        "run integer convolutions (unfolded, a Conv-BN pair stays float)")
    train: TrainConfig = Field(default_factory=_default_qat, description="QAT fine-tune: SGD lr 5e-4, wd 0, 3 epochs, "
                               "KD; keys given here replace those defaults one by one")

    @field_validator("train", mode="before")
    @classmethod
    def _train_over_defaults(cls, v: Any) -> Any:
        return over_defaults(_default_qat(), v)
