"""Hardware profiles: what a target is, as data (Olive's habit: targets are files, not code).

A profile names the runtime to deploy with, the precisions it supports, its peak
throughput per precision, memory bandwidth and size, a default latency budget and the
public source of every number. ``host`` means "this machine": its latencies are measured.
Other targets are measured when results from the device kit are imported, otherwise
predicted with a roofline model calibrated per profile, and always labelled as such.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
)

from edgekd.core.errors import ProfileError
from edgekd.core.formats import unknown_runtime_message
from edgekd.core.registry import format_validation_error

Precision = Literal["fp32", "fp16", "int8"]


class Calibration(BaseModel):
    """Per-profile efficiency factors fitted by `edgekd profiles calibrate`."""

    model_config = ConfigDict(extra="forbid")
    compute_efficiency: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="achieved/peak compute, per precision or op class"
    )
    memory_efficiency: PositiveFloat = 0.6
    weight_stream_factor: float = Field(1.0, ge=1.0, le=4.0, description=(
        "weights are read-only streams: their bandwidth over the copy bandwidth (fitted)"))
    cache_stream_factor: float = Field(1.0, ge=1.0, le=20.0, description=(
        "weights of a model that fits in cache_mb: their bandwidth over the copy bandwidth (fitted)"))
    per_layer_overhead_us: float = Field(5.0, ge=0)
    per_kind_overhead_us: dict[Literal["conv", "dwconv", "gconv", "gemm", "elementwise", "pool", "copy"],
                               NonNegativeFloat] = Field(
        default_factory=dict, description="per-layer cost by layer kind (conv, dwconv, gconv, gemm, elementwise, "
        "pool, copy); "
        "overrides per_layer_overhead_us")
    precision_overhead_us: dict[str, float] = Field(
        default_factory=dict, description="extra per-layer cost at a precision (e.g. INT8 re-quantization)")
    per_inference_overhead_us: float = Field(50.0, ge=0)
    fitted_on: str | None = Field(None, description="what the factors were fitted from")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    aliases: list[str] = Field(default_factory=list)
    kind: Literal["cpu", "gpu"]
    measured_here: bool = Field(False, description="true only for `host`: latencies are measured")
    runtimes: list[str] = Field(min_length=1, description="runtimes, preferred first")
    precisions: list[Precision] = Field(min_length=1)
    default_precision: Precision = Field("fp32", description="what a model is deployed in by default")
    peak_gops: dict[Precision, PositiveFloat] = Field(
        default_factory=dict, description="dense peak GFLOP/s (GOP/s for int8) per precision"
    )
    memory_bandwidth_gbs: PositiveFloat | None = None
    memory_gb: PositiveFloat | None = None
    cores: int | None = None
    cache_mb: PositiveFloat | None = Field(None, description=(
        "last-level cache that keeps a small model's weights between inferences (CPU L3, GPU L2)"))
    latency_budget_ms: PositiveFloat = 10.0
    max_onnx_opset: int | None = Field(None, description="highest opset the target's runtime accepts")
    tensorrt_version: str | None = Field(None, description="TensorRT on the device (decides trtexec flags)")
    int8_vnni: bool | None = Field(
        None, description="x86 CPUs: has VNNI (INT8 dot products in 32 bits); false makes quantize use 7-bit "
        "weights so OpenVINO does not saturate; null: not x86 or the machine running edgekd (detected)")
    channel_multiple: dict[Precision, PositiveInt] = Field(
        default_factory=dict, description="channel counts the target's convolution kernels run at without "
        "padding, per precision (their channel block or vector width); pruning keeps channels at multiples of "
        "it. host: detected from the CPU when not given")
    calibration: Calibration = Field(default_factory=Calibration)
    sources: list[str] = Field(default_factory=list)
    notes: str = ""
    path: Path | None = Field(None, exclude=True)

    @field_validator("runtimes")
    @classmethod
    def _known_runtimes(cls, runtimes: list[str]) -> list[str]:
        """Checked against the formats table, so a typo is caught when the profile loads."""
        for r in runtimes:
            msg = unknown_runtime_message(r)
            if msg:
                raise ValueError(msg)
        return runtimes


def user_profile_dir() -> Path:
    """Where `edgekd profiles calibrate` writes fitted profiles (they shadow the shipped ones)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgekd" / "profiles"


def profile_dirs() -> list[Path]:
    """Lookup order, first match wins: $EDGEKD_PROFILES, ./profiles, the user's calibrated
    profiles (~/.config/edgekd/profiles), the shipped ones."""
    dirs: list[Path] = []
    env = os.environ.get("EDGEKD_PROFILES")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path.cwd() / "profiles", user_profile_dir()]
    pkg = Path(__file__).resolve().parents[1]
    dirs += [pkg.parent / "profiles", pkg / "_profiles"]  # source checkout, installed wheel
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def load_profile_file(path: Path) -> Profile:
    """Validate one profile file; errors name the file and the bad key."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {path}: the top level must be a mapping")
    try:
        prof = Profile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(
            f"profile {path}: {format_validation_error(exc, model=Profile)}",
            hint="compare with profiles/host.yaml; `edgekd profiles show host` prints it",
        ) from None
    for p in [*prof.peak_gops, *prof.channel_multiple, prof.default_precision]:
        if p not in prof.precisions:
            raise ProfileError(f"profile {path}: precision {p!r} is used but not listed in precisions",
                               hint=f"precisions: {prof.precisions}")
    prof.path = Path(path)
    return prof


def available_profiles() -> dict[str, Profile]:
    """All profiles by name (earlier directories shadow later ones)."""
    found: dict[str, Profile] = {}
    for d in profile_dirs():
        for f in sorted(d.glob("*.yaml")):
            if f.stem not in found:
                found[f.stem] = load_profile_file(f)
    return found


def resolve_target(name_or_path: str) -> tuple[Profile, str | None]:
    """A profile by name, alias or file path; also returns a note when an alias was used."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ProfileError(f"profile file not found: {p}")
        return load_profile_file(p), None
    profiles = available_profiles()
    if name_or_path in profiles:
        return profiles[name_or_path], None
    for prof in profiles.values():
        if name_or_path in prof.aliases:
            return prof, f"target {name_or_path!r} resolved to {prof.name!r}"
    import difflib

    names = sorted(profiles)
    aliases = sorted(f"{a}→{p.name}" for p in profiles.values() for a in p.aliases)
    close = difflib.get_close_matches(name_or_path, [*names, *(a for p in profiles.values() for a in p.aliases)], n=1)
    raise ProfileError(
        f"unknown target {name_or_path!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
        hint=f"known targets: {', '.join(names)}"
        + (f"; aliases: {', '.join(aliases)}" if aliases else "")
        + "; or pass a path to your own profile YAML",
    )
