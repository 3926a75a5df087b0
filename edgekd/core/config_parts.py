"""The building blocks of the config schema: strict models, registry components, and the
``data`` section (where images come from and how the teacher expects them).

Split from ``config.py`` to keep each module to one job; ``config.py`` re-exports what it
always exported.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, field_validator, model_validator

from edgekd.core import registries
from edgekd.core.errors import ConfigError
from edgekd.core.registry import Registry


def _parse_params(registry: Registry, name: str, extra: dict[str, Any] | None, key: str,
                  siblings: tuple[str, ...] = ()) -> BaseModel:
    """The registered component's own parameter model, errors re-raised as pydantic's (so the
    whole config reports every problem with its key)."""
    try:
        return registry.parse_params(name, dict(extra or {}), key=key, siblings=siblings)
    except ConfigError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from None


def _registered(registry: Registry, key: str, names: list[str]) -> list[str]:
    """``names`` if all are in ``registry``; else a validation error listing the valid ones."""
    for n in names:
        try:
            registry.entry(n)  # pydantic prefixes the key
        except ConfigError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None
    return names


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, and values set later are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class WithParams(BaseModel):
    """A section whose extra keys are a registered entry's parameters, parsed by its own model."""

    _params: BaseModel | None = PrivateAttr(default=None)

    def _parse(self, registry: Registry, name: str, key: str) -> None:
        self._params = _parse_params(registry, name, self.model_extra, key, tuple(type(self).model_fields))

    @property
    def params(self) -> BaseModel:
        assert self._params is not None
        return self._params


class Component(WithParams):
    """A registry name plus its own parameters, flat: ``{name: kl, temperature: 4}``."""

    model_config = ConfigDict(extra="allow")
    registry: ClassVar[Registry]
    name: str

    @model_validator(mode="after")
    def _validate_params(self) -> Component:
        self._parse(self.registry, self.name, "name")
        return self

    def spec(self) -> dict[str, Any]:
        """Plain-data form, for hashing and the saved config."""
        return {"name": self.name, **self.params.model_dump(mode="json")}


Stats = list[float] | Literal["imagenet", "dataset"]


class PreprocessConfig(StrictModel):
    """How the teacher expects its input; state it for a teacher trained elsewhere.

    Every key left out is resolved: the checkpoint's record (safetensors metadata or a sidecar
    JSON), else the model's timm ``pretrained_cfg`` (for a teacher loaded from a checkpoint),
    else squash + this data set's statistics."""

    resize: Literal["squash", "crop"] | None = Field(
        None, description="squash: both sides to the size; crop: shorter side to size/crop_fraction, centre crop")
    crop_fraction: float | None = Field(
        None, gt=0, le=1, description="share of the resized image the centre crop keeps, e.g. 0.875: resize to 256, "
        "crop 224")
    interpolation: Literal["nearest", "bilinear", "bicubic"] | None = Field(
        None, description="resampling filter for the resize")
    mean: Stats | None = Field(None, description="[r, g, b], imagenet, or dataset (this training set's mean)")
    std: Stats | None = Field(None, description="[r, g, b], imagenet, or dataset (this training set's std)")
    channels: Literal["RGB", "BGR"] | None = Field(
        None, description="channel order the model takes; BGR: the normalised channels are reversed")

    @field_validator("mean", "std")
    @classmethod
    def _three(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) != 3:
            raise ValueError(f"give 3 values (one per channel), or imagenet / dataset; got {v}")
        return v


class DataConfig(WithParams):
    """Where images come from. Source-specific keys sit beside ``source``."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(
        "digits", description="data set: digits (bundled), synthetic or imagefolder; its own keys sit beside "
        "source (see Components)")
    image_size: PositiveInt | None = Field(
        None, ge=8, description="model input size (at least 8 px); default: the teacher checkpoint's record, timm's "
        "pretrained_cfg for a checkpoint teacher, else 32")
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="share of each class held out for validation (digits, or imagefolder without "
        "val_path)")
    preprocess: PreprocessConfig = Field(
        default_factory=PreprocessConfig, description="how the teacher expects its input (resize, crop, "
        "normalisation); left out: resolved from its checkpoint, timm or the data set")
    stream: Literal["auto"] | bool = Field(
        "auto", description="image folders: read per batch by DataLoader workers instead of decoding into memory; "
        "auto: stream when the decoded images would exceed stream_threshold_mb")
    stream_threshold_mb: PositiveInt = Field(
        2048, description="stream: auto streams an image folder whose decoded images exceed this many MB")
    workers: int | None = Field(None, ge=0, description="DataLoader worker processes; default: CPU cores, at most 8")

    @model_validator(mode="after")
    def _validate_params(self) -> DataConfig:
        self._parse(registries.DATASETS, self.source, "source")
        if self.stream is True and self.source != "imagefolder":
            raise ValueError(f"stream: true streams image folders; {self.source!r} is generated in memory "
                             "(remove stream, or use source: imagefolder)")
        return self

    def spec(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "image_size": self.image_size,
            "val_fraction": self.val_fraction,
            **self.params.model_dump(mode="json"),
        }
