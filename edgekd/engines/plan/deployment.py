"""Target-dependent decisions, made once per run: the deployment plan.

Which runtime and format each target deploys with, which formats to export (and which
must validate), the quantizer preset, NNCF's overflow fix, the ONNX opset and the channel
rounding all depend on the targets. They are resolved once, from the profiles'
``runtimes``, into a typed plan that the stages read and the report records
(``report.json`` → ``plan``), so no stage derives them again and no two stages disagree.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from edgekd.core.config import Config
from edgekd.core.formats import format_of_runtime
from edgekd.core.hostinfo import host_channel_multiple
from edgekd.core.profiles import Profile
from edgekd.engines.quantization.overflow import host_has_vnni
from edgekd.engines.quantization.recipe import QuantRecipe


class TargetPlan(BaseModel):
    target: str
    measured_here: bool
    runtime: str = Field(description="the runtime the target deploys with (its profile's first)")
    format: str = Field(description="the format that runtime runs")
    runtimes: list[str] = Field(description="every runtime the target lists, preferred first")
    formats: list[str] = Field(description="formats of every runtime the target lists, exported for it")
    precisions: list[str]
    opset_cap: int | None = None
    channel_rounding: int | None = Field(None, description="channel counts pruned to multiples of this")
    channel_rounding_source: str = "none"
    deploy_precision: str = Field("fp32", description="the precision the run's final model runs in on the target")
    tensorrt_version: str | None = None
    int8_vnni: bool | None = Field(None, description="x86: VNNI present (false: OpenVINO INT8 may saturate)")


class QuantizerPlan(BaseModel):
    preset: str
    preset_reason: str
    per_channel: bool
    overflow_fix: str
    overflow_reason: str
    ignored_scope: list[str] = Field(default_factory=list)
    fold_batchnorm: bool = True

    def recipe(self) -> QuantRecipe:
        return QuantRecipe(self.preset, self.per_channel, self.overflow_fix, tuple(self.ignored_scope),
                           self.fold_batchnorm)


class RunPlan(BaseModel):
    targets: list[TargetPlan]
    export_formats: list[str] = Field(description="formats to write, ONNX first (the others build on it)")
    required_formats: list[str] = Field(description="formats whose failed validation fails the export stage")
    opset: int
    quantizer: QuantizerPlan

    def target(self, name: str) -> TargetPlan:
        return next(t for t in self.targets if t.target == name)

    def targets_running(self, runtime: str) -> list[TargetPlan]:
        return [t for t in self.targets if runtime in t.runtimes]

    @property
    def opset_cap(self) -> int | None:
        """The highest opset every target's runtime accepts (None: no target limits it)."""
        caps = [t.opset_cap for t in self.targets if t.opset_cap]
        return min(caps) if caps else None

    @property
    def channel_rounding(self) -> int | None:
        """Channel counts a pruned model keeps: a multiple every target asks for (their lcm)."""
        values = [t.channel_rounding for t in self.targets if t.channel_rounding]
        return math.lcm(*values) if values else None


def deploy_precision(profile: Profile, config: Config | None) -> str:
    """INT8 when the run quantizes and the target runs INT8 (the quantized model is what ships),
    else the profile's default precision."""
    if config is not None and "quantize" in config.stages and "int8" in profile.precisions:
        return "int8"
    return profile.default_precision


def target_channel_rounding(profile: Profile, config: Config | None, precision: str) -> tuple[int | None, str]:
    """The multiple pruned channel counts keep on this target, and where it comes from:
    ``prune.round_to`` when set, else the profile's ``channel_multiple`` at the deployed
    precision (on ``host`` without one: detected from the CPU)."""
    if config is not None and config.prune.round_to:
        return config.prune.round_to, "prune.round_to"
    value = profile.channel_multiple.get(precision)
    if value:
        return value, f"profile {profile.name}: channel_multiple.{precision}"
    if profile.measured_here:
        value, why = host_channel_multiple(precision)
        return value, f"this CPU, {precision}: {why}"
    return None, f"none (profile {profile.name} gives no channel_multiple for {precision})"


def plan_target(profile: Profile, config: Config | None = None) -> TargetPlan:
    precision = deploy_precision(profile, config)
    rounding, rounding_source = target_channel_rounding(profile, config, precision)
    return TargetPlan(
        target=profile.name, measured_here=profile.measured_here, runtime=profile.runtimes[0],
        format=format_of_runtime(profile.runtimes[0]).name, runtimes=list(profile.runtimes),
        formats=list(dict.fromkeys(format_of_runtime(r).name for r in profile.runtimes)),
        precisions=list(profile.precisions), opset_cap=profile.max_onnx_opset,
        channel_rounding=rounding, channel_rounding_source=rounding_source, deploy_precision=precision,
        tensorrt_version=profile.tensorrt_version, int8_vnni=profile.int8_vnni,
    )


def export_formats(configured: list[str], targets: list[TargetPlan]) -> tuple[list[str], list[str]]:
    """All formats to write (ONNX first) and the required ones.

    Required: ONNX, the formats the user listed, and the format each device target deploys
    with. A required artifact that fails validation fails the stage; an optional one (e.g.
    OpenVINO on ``host`` for a model quantized for TensorRT) is reported as failed, with
    both accuracies, and the run goes on. The PyTorch folder is not an export format.
    """
    wanted = ["onnx", *configured]
    required = ["onnx", *configured]
    for t in targets:
        wanted += [f for f in t.formats if f != "torch"]
        if not t.measured_here and t.format != "torch":
            required.append(t.format)
    return list(dict.fromkeys(wanted)), list(dict.fromkeys(required))


def quantizer_plan(config: Config, targets: list[TargetPlan], exports_openvino: bool,
                   host_vnni: bool | None) -> QuantizerPlan:
    q = config.quantize
    if q.preset != "auto":
        preset, why = q.preset, "set in quantize.preset"
    elif any(t.runtime == "tensorrt" for t in targets):
        preset, why = "tensorrt", "a target deploys with TensorRT (signed INT8, zero point 0)"
    else:
        preset, why = "mixed", "no target deploys with TensorRT (asymmetric activations suit CPUs)"
    fix, fix_why = overflow_fix(q.overflow_fix, targets, exports_openvino, host_vnni)
    return QuantizerPlan(preset=preset, preset_reason=why, per_channel=q.per_channel, overflow_fix=fix,
                         overflow_reason=fix_why, ignored_scope=list(q.ignored_scope),
                         fold_batchnorm=q.fold_batchnorm)


def overflow_fix(setting: str, targets: list[TargetPlan], openvino_exported: bool,
                 host_vnni: bool | None) -> tuple[str, str]:
    """NNCF's ``overflow_fix`` value (enable | first_layer_only | disable) and why
    (see quantization/overflow.py for the saturation it avoids)."""
    if setting != "auto":
        return ("first_layer_only" if setting == "first_layer" else setting), "set in quantize.overflow_fix"
    risky = [t.target for t in targets if t.int8_vnni is False and "openvino" in t.runtimes]
    if risky:
        return "enable", f"7-bit weights: {', '.join(risky)} runs OpenVINO INT8 on a CPU without VNNI"
    if openvino_exported and host_vnni is False:
        return "enable", ("7-bit weights: the OpenVINO INT8 export is validated on this machine, "
                          "whose CPU lacks VNNI (INT8 convolutions would saturate)")
    return "first_layer_only", "NNCF's default (first layer only): no OpenVINO target on a CPU without VNNI"


def plan_run(config: Config, targets: list[Profile], host_vnni: bool | None | str = "detect") -> RunPlan:
    """The run's plan for these targets (``host_vnni``: detected from /proc/cpuinfo by default)."""
    vnni = host_has_vnni() if host_vnni == "detect" else host_vnni
    tplans = [plan_target(t, config) for t in targets]
    formats, required = export_formats(config.export.formats, tplans)
    caps = [t.max_onnx_opset for t in targets if t.max_onnx_opset]
    return RunPlan(targets=tplans, export_formats=formats, required_formats=required,
                   opset=min([config.export.opset, *caps]),
                   quantizer=quantizer_plan(config, tplans, "openvino" in formats, vnni))
