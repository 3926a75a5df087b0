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
    weight: NonNegativeFloat = Field(1.0, description="factor this term is multiplied by in the summed loss")

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "weight": self.weight}


class OptimizerConfig(StrictModel):
    """The optimizer and its learning rate."""

    name: Literal["sgd", "adamw"] = Field(
        "sgd", description="sgd: SGD with momentum; adamw: AdamW (momentum and nesterov are not used)")
    lr: PositiveFloat = Field(0.05, description="peak learning rate; warm-up and the schedule scale it per step")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (0: plain SGD)")
    weight_decay: NonNegativeFloat = Field(
        5e-4, description="weight decay: an L2 penalty in sgd, decoupled in adamw (0: none)")
    nesterov: bool = Field(True, description="Nesterov momentum for sgd (only when momentum > 0)")


class ScheduleConfig(StrictModel):
    """How the learning rate changes over the training, updated every step."""

    name: Literal["cosine", "constant", "step"] = Field(
        "cosine", description="cosine: from lr down to 0 by the last epoch; constant: lr throughout; "
        "step: lr times gamma every step_epochs")
    warmup_epochs: NonNegativeFloat = Field(
        0.0, description="linear warm-up from near 0 to lr over this many epochs (fractions allowed; 0: none)")
    step_epochs: PositiveInt = Field(30, description="step schedule: epochs between two drops of the learning rate")
    gamma: PositiveFloat = Field(
        0.1, description="step schedule: factor the learning rate is multiplied by at each drop")


class AugmentConfig(StrictModel):
    """Random shifts and flips of the training images, drawn per image on the training device."""

    shift: int = Field(2, ge=0, description="random translation in pixels (pad-and-crop)")
    hflip: bool = Field(
        False, description="mirror half the images left-right; leave off where a mirrored image means something "
        "else (digits, text)")
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

    epochs: PositiveInt = Field(
        10, description="passes over the training set; the weights of the epoch with the best validation accuracy "
        "are kept")
    batch_size: PositiveInt = Field(
        128, description="images per optimizer step (split over the processes under torchrun); lowered when the "
        "training set is smaller")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="optimizer and learning rate")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="learning-rate schedule")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="augmentation of the training images")
    loss: list[LossTerm] = Field(
        default_factory=_default_kd_loss, min_length=1,
        description="terms summed into the training loss, each times its weight (names and their "
        "parameters: see Components)")
    grad_clip: PositiveFloat | None = Field(
        5.0, description="clip the gradients' total L2 norm to this before each step; null: no clipping")
    max_steps_per_epoch: PositiveInt | None = Field(
        None, description="stop each epoch after this many batches (a quick probe of a large data set)")
    recipe: Literal["auto", "sgd", "adamw"] = Field(
        "auto", description="settings the model's family needs, filled in where this section leaves them "
        "open: auto: by the family of the network trained (transformers, ConvNeXt and hybrids: adamw; "
        "ResNets, MobileNets and unknown networks: sgd); adamw: AdamW at 0.02x the SGD learning rate, "
        "weight decay 0.05, warm-up over a tenth of the epochs, grad_clip 1, label smoothing 0.1; sgd: "
        "this section exactly as written")

    @property
    def uses_teacher(self) -> bool:
        return any(registries.LOSSES.get(t.name).needs_teacher for t in self.loss)


class TeacherTrainConfig(TrainConfig):
    """Training the teacher itself: no teacher signal, plain labels."""

    loss: list[LossTerm] = Field(
        default_factory=_default_ce_loss, min_length=1,
        description="terms summed into the teacher's loss, each times its weight; terms that need a teacher are "
        "refused")

    @model_validator(mode="after")
    def _no_teacher_losses(self) -> TeacherTrainConfig:
        bad = [t.name for t in self.loss if registries.LOSSES.get(t.name).needs_teacher]
        if bad:
            raise ValueError(f"the teacher cannot be distilled from itself: remove {bad} (use ce)")
        return self
