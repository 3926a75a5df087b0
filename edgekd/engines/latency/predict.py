"""Predicted latency records for a target that is not here (roofline on the ONNX graph)."""

from __future__ import annotations

from pathlib import Path

from edgekd.core.profiles import Profile
from edgekd.engines.latency.measure import LatencyRecord
from edgekd.engines.latency.onnx_graph import analyze
from edgekd.engines.latency.roofline import predict
from edgekd.engines.plan.deployment import plan_target


def candidate_precisions(profile: Profile, quantized: bool) -> list[str]:
    """What a model can be deployed in on ``profile``: INT8 only from a quantized model."""
    if quantized:
        return ["int8"] if "int8" in profile.precisions else []
    return [p for p in ("fp32", "fp16") if p in profile.precisions]


def predict_records(model: str, onnx_path: Path, profile: Profile, *, quantized: bool,
                    batch: int = 1) -> list[LatencyRecord]:
    """One predicted record per deployable precision, on the profile's preferred runtime."""
    layers = analyze(onnx_path, batch)
    deploy = plan_target(profile)  # the runtime and format the target deploys with
    out = []
    for prec in candidate_precisions(profile, quantized):
        p = predict(layers, profile, prec)
        calibrated = "calibrated" if p.calibrated and not str(profile.calibration.fitted_on).startswith("prior") \
            else "uncalibrated priors"
        out.append(LatencyRecord(
            model=model, runtime=deploy.runtime, format=deploy.format, precision=prec,
            batch_size=batch, threads=profile.cores, device=profile.kind, target=profile.name, kind="predicted",
            median_ms=p.ms, throughput_ips=round(batch / p.ms * 1e3, 2) if p.ms else None, samples=None,
            runtime_version="roofline", host=profile.description,
            notes=f"roofline ({calibrated}): compute {p.compute_ms:.3f} ms, memory {p.memory_ms:.3f} ms, "
                  f"overhead {p.overhead_ms:.3f} ms, {p.achieved_gflops():.1f} GFLOP/s",
        ))
    return out
