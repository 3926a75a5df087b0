"""Roofline latency prediction for targets that are not here.

Each layer takes max(compute time, memory time): FLOPs over the profile's peak for the
layer's precision times a fitted efficiency for its kind (dense, depthwise and grouped
conv, gemm, attention, norm, softmax, gelu, element-wise, copy), and bytes over the memory bandwidth times a fitted memory
efficiency, the weights' bytes at up to 4x that (read-only streams: a fitted factor), or,
when all the weights a model reads fit the profile's last-level cache, at a separately
fitted cache factor (a loop of inferences finds them there: a model whose weights just
outgrow the cache runs several times slower for a small rise in FLOPs; benchmarks/RESULTS.md,
"What each part of the cost model buys"); plus a per-layer launch overhead by layer kind and
a per-inference overhead. The efficiency factors come from `edgekd profiles calibrate`
(measured runs on the device, or imported device-kit results); until then, conservative
defaults apply and the prediction says so. Every prediction is labelled ``predicted``, never ``measured``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

from edgekd.core.errors import ProfileError
from edgekd.core.profiles import Calibration, Profile
from edgekd.engines.latency.onnx_graph import LayerCost

# Priors for an uncalibrated profile. LayerNorm, Softmax and GELU: the 2-core EPYC's fit, rounded
# (benchmarks/RESULTS.md, "Prediction error on transformers and ConvNeXt"): erf and exp are
# polynomials that stay below the FMA peak an element-wise add is costed at; at edge sizes these
# layers are memory- and launch-bound, so the prior rarely decides a prediction. Attention
# borrows gemm's.
DEFAULT_EFFICIENCY = {"conv": 0.35, "dwconv": 0.05, "gemm": 0.3, "norm": 0.35, "softmax": 0.5, "gelu": 0.3,
                      "elementwise": 1.0, "pool": 1.0, "copy": 1.0}
# A kind a profile has no factor for borrows its parent's (else its own prior): profiles fitted
# before grouped convolutions or the transformer kinds existed keep their CNN predictions
# exactly (a CNN has no attention, norm, softmax or gelu layer) and price an attention MatMul as
# the gemm it used to be. The parent also lends its per-layer launch cost to a kind the
# profile schema (Calibration.per_kind_overhead_us) has no key for.
FALLBACK_KIND = {"gconv": "conv", "attention": "gemm", "norm": "elementwise", "softmax": "elementwise",
                 "gelu": "elementwise"}
LAUNCH_KINDS = frozenset(get_args(get_args(Calibration.model_fields["per_kind_overhead_us"].annotation)[0]))


@dataclass
class Prediction:
    ms: float
    precision: str
    compute_ms: float
    memory_ms: float
    overhead_ms: float
    layers: int
    flops: float
    bytes: float
    calibrated: bool
    per_kind_ms: dict[str, float] = field(default_factory=dict)

    def achieved_gflops(self) -> float:
        return self.flops / (self.ms * 1e6) if self.ms > 0 else 0.0


def _peak(profile: Profile, precision: str) -> float:
    if precision in profile.peak_gops:
        return profile.peak_gops[precision]  # type: ignore[index]
    fallback = [p for p in ("fp16", "fp32") if p in profile.peak_gops]
    if not fallback:
        raise ProfileError(
            f"profile {profile.name!r} has no peak_gops, so its latency cannot be predicted",
            hint=f"run `edgekd profiles calibrate {profile.name}` on the device, or add peak_gops to its YAML",
        )
    return profile.peak_gops[fallback[0]]  # type: ignore[index]


def efficiency(profile: Profile, kind: str, precision: str) -> float:
    eff = profile.calibration.compute_efficiency
    for k in (kind, FALLBACK_KIND.get(kind)):
        if k is not None and (f"{k}:{precision}" in eff or k in eff):
            return eff.get(f"{k}:{precision}", eff.get(k, 0.3))
    return DEFAULT_EFFICIENCY.get(kind, DEFAULT_EFFICIENCY.get(FALLBACK_KIND.get(kind, kind), 0.3))


def launch_kind(kind: str) -> str:
    """The kind whose fitted per-layer cost a layer pays: its own where a profile can hold one."""
    return kind if kind in LAUNCH_KINDS else FALLBACK_KIND.get(kind, kind)


def weights_in_cache(layers: list[LayerCost], profile: Profile, precision: str = "fp32") -> bool:
    """Whether every weight byte one inference reads fits in the last-level cache."""
    if profile.cache_mb is None:
        return False
    half = 0.5 if precision == "fp16" else 1.0  # FP16 deployment halves the float layers' weights
    read = sum(x.weight_bytes * (half if x.precision == "fp32" else 1.0) for x in layers)
    return read <= profile.cache_mb * 2**20


def predict(layers: list[LayerCost], profile: Profile, precision: str = "fp32") -> Prediction:
    """Latency of one inference of the analysed graph on ``profile`` at ``precision``.

    ``precision`` is the deployment precision: fp16 halves the bytes of fp32 layers and
    runs them at the fp16 peak; layers the graph quantized to int8 stay int8.
    """
    if profile.memory_bandwidth_gbs is None:
        raise ProfileError(f"profile {profile.name!r} has no memory_bandwidth_gbs",
                           hint=f"run `edgekd profiles calibrate {profile.name}` or add it to the YAML")
    cal = profile.calibration
    bw = profile.memory_bandwidth_gbs * cal.memory_efficiency * 1e9  # bytes/s
    compute = memory = 0.0
    per_kind: dict[str, float] = {}
    total_flops = total_bytes = 0.0
    n_layers = 0
    in_cache = weights_in_cache(layers, profile, precision)
    weight_factor = cal.cache_stream_factor if in_cache else cal.weight_stream_factor
    for layer in layers:
        prec = layer.precision if layer.precision == "int8" else precision
        if prec == "int8" and "int8" not in profile.precisions:
            prec = "fp16" if "fp16" in profile.precisions else "fp32"
        scale_bytes = 0.5 if (prec == "fp16" and layer.precision == "fp32") else 1.0
        nbytes = layer.bytes * scale_bytes
        t_c = layer.flops / (_peak(profile, prec) * 1e9 * efficiency(profile, layer.kind, prec))
        w = layer.weight_bytes * scale_bytes
        t_m = (nbytes - w) / bw + w / (bw * weight_factor)
        t = max(t_c, t_m)
        if t_c >= t_m:
            compute += t
        else:
            memory += t
        per_kind[layer.kind] = per_kind.get(layer.kind, 0.0) + t * 1e3
        total_flops += layer.flops
        total_bytes += nbytes
        n_layers += 1
    extra = sum(cal.precision_overhead_us.get(layer.precision if layer.precision == "int8" else precision, 0.0)
                for layer in layers)
    launches = sum(cal.per_kind_overhead_us.get(launch_kind(layer.kind), cal.per_layer_overhead_us) for layer in layers)
    overhead = (launches + extra + cal.per_inference_overhead_us) * 1e-6
    ms = (compute + memory + overhead) * 1e3
    return Prediction(round(ms, 5), precision, compute * 1e3, memory * 1e3, overhead * 1e3, n_layers,
                      total_flops, total_bytes, cal.fitted_on is not None,
                      {k: round(v, 5) for k, v in per_kind.items()})
