"""The training settings shared by every stage that trains (teacher, distill, prune fine-tune,
QAT): optimizer, schedule, augmentation and the loss terms."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator, model_validator

from edgekd.core import registries
from edgekd.core.config_parts import Component, StrictModel
from edgekd.core.registry import Registry


class LossTerm(Component):
    """One weighted term of the training loss."""

    registry: ClassVar[Registry] = registries.LOSSES
    weight: NonNegativeFloat = 1.0

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "weight": self.weight}


class OptimizerConfig(StrictModel):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: PositiveFloat = 0.05
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: NonNegativeFloat = 5e-4
    nesterov: bool = True


class ScheduleConfig(StrictModel):
    name: Literal["cosine", "constant", "step"] = "cosine"
    warmup_epochs: NonNegativeFloat = 0.0
    step_epochs: PositiveInt = 30
    gamma: PositiveFloat = 0.1


class AugmentConfig(StrictModel):
    """Batched, on-device augmentation (cheap even on a GPU doing 15k img/s)."""

    shift: int = Field(2, ge=0, description="random translation in pixels (pad-and-crop)")
    hflip: bool = False
    crop_scale: tuple[float, float] | None = Field(
        None, description="streamed image folders: timm's random-resized crop over this area fraction, "
        "e.g. [0.25, 1.0], decoded per image by the workers (in-memory data is stored at the input size)")

    @field_validator("crop_scale")
    @classmethod
    def _fraction(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0 < v[0] <= v[1] <= 1):
            raise ValueError(f"crop_scale needs 0 < low <= high <= 1; got {list(v)}")
        return v


def _default_kd_loss() -> list[LossTerm]:
    return [LossTerm(name="kl", temperature=4.0, alpha=0.9)]


def _default_ce_loss() -> list[LossTerm]:
    return [LossTerm(name="ce")]


class TrainConfig(StrictModel):
    """Settings of the one distillation trainer (distill, prune fine-tune, QAT)."""

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 128
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: list[LossTerm] = Field(default_factory=_default_kd_loss, min_length=1)
    grad_clip: PositiveFloat | None = 5.0
    max_steps_per_epoch: PositiveInt | None = Field(
        None, description="stop each epoch after this many batches (a quick probe of a large data set)")

    @property
    def uses_teacher(self) -> bool:
        return any(registries.LOSSES.get(t.name).needs_teacher for t in self.loss)


class TeacherTrainConfig(TrainConfig):
    """Training the teacher itself: no teacher signal, plain labels."""

    loss: list[LossTerm] = Field(default_factory=_default_ce_loss, min_length=1)

    @model_validator(mode="after")
    def _no_teacher_losses(self) -> TeacherTrainConfig:
        bad = [t.name for t in self.loss if registries.LOSSES.get(t.name).needs_teacher]
        if bad:
            raise ValueError(f"the teacher cannot be distilled from itself: remove {bad} (use ce)")
        return self
