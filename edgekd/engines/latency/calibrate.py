"""Fitting a profile's roofline efficiency factors to measured latencies.

Input: pairs of (per-layer costs of an ONNX graph, deployment precision, measured median
ms). Output: compute efficiency per layer kind and precision, memory efficiency, and
per-layer-kind (with >= 20 samples; one shared value below) / per-precision /
per-inference overheads, chosen to minimise a robust (soft-L1) loss on the log error of
the predictions, so a 2× miss on a 0.1 ms model counts as much as on a 10 ms one.
scipy's bounded least squares on the log-parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgekd.core.profiles import Calibration, Profile
from edgekd.engines.latency.onnx_graph import LayerCost
from edgekd.engines.latency.roofline import DEFAULT_EFFICIENCY, launch_kind, predict

PER_KIND_MIN_SAMPLES = 20
# kinds whose compute efficiency is fitted; the others are memory- or launch-bound at their priors
FITTED_KINDS = ("conv", "dwconv", "gconv", "gemm", "attention", "norm", "softmax", "gelu")


@dataclass
class Sample:
    name: str
    layers: list[LayerCost]
    precision: str
    measured_ms: float


def _kinds(samples: list[Sample]) -> list[str]:
    """The (kind, precision) efficiencies the data can inform."""
    keys = set()
    for s in samples:
        for layer in s.layers:
            if layer.kind in FITTED_KINDS:
                prec = layer.precision if layer.precision == "int8" else s.precision
                keys.add(f"{layer.kind}:{prec}")
    return sorted(keys)


def fit(samples: list[Sample], profile: Profile, note: str) -> Calibration:
    from scipy.optimize import least_squares

    keys = _kinds(samples)
    # one fixed cost per layer kind needs data: a few device-kit runs get one shared value
    kinds = sorted({launch_kind(layer.kind) for s in samples for layer in s.layers}) \
        if len(samples) >= PER_KIND_MIN_SAMPLES else []
    shared = not kinds
    precisions = sorted({"int8" for s in samples for layer in s.layers if layer.precision == "int8"})
    base = profile.calibration
    x0 = [math.log(base.compute_efficiency.get(k, DEFAULT_EFFICIENCY.get(k.split(":")[0], 0.3))) for k in keys]
    x0 += [math.log(base.memory_efficiency), math.log(max(base.per_inference_overhead_us, 1.0))]
    x0 += [math.log(base.weight_stream_factor), math.log(base.cache_stream_factor)]
    x0 += [math.log(max(base.per_kind_overhead_us.get(k, base.per_layer_overhead_us), 0.1)) for k in kinds]
    x0 += [math.log(max(base.per_layer_overhead_us, 0.1))] if shared else []
    x0 += [math.log(max(base.precision_overhead_us.get(p, 1.0), 0.1)) for p in precisions]

    def unpack(x: np.ndarray) -> Calibration:
        n, m = len(keys), len(kinds) + shared
        eff = {k: float(min(math.exp(v), 1.0)) for k, v in zip(keys, x[:n], strict=True)}
        per_kind = {k: float(math.exp(v)) for k, v in zip(kinds, x[n + 4:n + 4 + len(kinds)], strict=True)}
        per_layer = float(math.exp(x[n + 4])) if shared else float(np.median(list(per_kind.values())))
        return Calibration(
            compute_efficiency=eff, memory_efficiency=float(min(math.exp(x[n]), 1.0)),
            per_layer_overhead_us=per_layer,
            per_kind_overhead_us=per_kind, per_inference_overhead_us=float(math.exp(x[n + 1])),
            weight_stream_factor=float(min(max(math.exp(x[n + 2]), 1.0), 4.0)),
            cache_stream_factor=float(min(max(math.exp(x[n + 3]), 1.0), 20.0)),
            precision_overhead_us={p: float(math.exp(v)) for p, v in zip(precisions, x[n + 4 + m:], strict=True)},
            fitted_on=note,
        )

    def residuals(x: np.ndarray) -> np.ndarray:
        prof = profile.model_copy(update={"calibration": unpack(x)})
        out = []
        for s in samples:
            p = predict(s.layers, prof, s.precision)  # its .ms is rounded: too coarse for finite differences
            out.append(math.log((p.compute_ms + p.memory_ms + p.overhead_ms) / s.measured_ms))
        return np.array(out)

    # Bounded trust-region least squares on the log error: every factor stays physical
    # (efficiency 0.1%..100%, per-layer overheads 0.05..200 us, per-inference up to 5 ms,
    # weight streaming 1..4x, from cache 1..20x), so no parameter can run off to 1e-100 to
    # fit one noisy model (Nelder-Mead on 15 free parameters did, on a 40-model set).
    # soft_l1: a model timed in a noisy moment pulls less than the others.
    lo, hi = np.full(len(x0), math.log(0.05)), np.full(len(x0), math.log(200.0))
    n = len(keys)
    lo[:n], hi[:n] = math.log(1e-3), 0.0
    lo[n], hi[n] = math.log(0.05), 0.0
    lo[n + 1], hi[n + 1] = math.log(0.05), math.log(5000.0)
    lo[n + 2], hi[n + 2] = 0.0, math.log(4.0)
    lo[n + 3], hi[n + 3] = 0.0, math.log(20.0)
    best = least_squares(residuals, np.clip(np.array(x0), lo + 1e-9, hi - 1e-9), bounds=(lo, hi), loss="soft_l1",
                         f_scale=0.1, diff_step=1e-3, max_nfev=4000)
    return unpack(best.x)


def errors(samples: list[Sample], profile: Profile) -> list[dict[str, float | str]]:
    """Per-sample predicted vs measured, with the relative error."""
    out = []
    for s in samples:
        pred = predict(s.layers, profile, s.precision).ms
        out.append({"model": s.name, "precision": s.precision, "measured_ms": round(s.measured_ms, 5),
                    "predicted_ms": round(pred, 5), "error": round(pred / s.measured_ms - 1, 4)})
    return out


def summary(rows: list[dict[str, float | str]]) -> dict[str, float]:
    errs = np.abs([float(r["error"]) for r in rows])
    return {"models": len(rows), "median_abs_error": round(float(np.median(errs)), 4),
            "within_10pct": round(float(np.mean(errs <= 0.10)), 4), "within_20pct": round(float(np.mean(errs <= 0.20)), 4),
            "max_abs_error": round(float(errs.max()), 4)}
