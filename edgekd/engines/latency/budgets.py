"""A model's latency on a target's best runtime: what relative budgets divide and compare.

A user wants "k times faster than the model I have" on *each* target, so a budget divides
the teacher's latency there, on its best runtime (edgekd/engines/budgets/ resolves the budgets):

* on ``host`` the teacher is exported and timed in every host runtime that is installed
  (ONNX Runtime and OpenVINO, FP32) and the fastest counts: speed-ups are stated against
  the teacher on its best runtime, never against PyTorch eager;
* elsewhere its graph goes through the target's roofline predictor (calibrated when the
  device kit's results were imported), on the runtime and precision the target deploys.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from edgekd.core.formats import HOST_RUNTIMES
from edgekd.core.profiles import Profile
from edgekd.engines.latency.cache import lookup, store, timing_key
from edgekd.engines.latency.oracle import LatencyEstimate, LatencyOracle
from edgekd.engines.latency.timing import summarize, time_calls, warm_up


def _time_host(path: Path, input_size: int, batch: int, threads: int, repeats: int,
               names: tuple[str, ...] = HOST_RUNTIMES) -> list[LatencyEstimate]:
    """The ONNX file timed in each installed host runtime of ``names``, FP32, interleaved rounds, medians."""
    from edgekd.engines.runtimes.base import get_runtime

    x = np.random.default_rng(0).standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
    runners = {}
    for name in names:
        runtime = get_runtime(name)
        if runtime.unavailable_reason() is None:
            runners[name] = runtime.load(path, precision="fp32", threads=threads)
    samples: dict[str, list[float]] = {n: [] for n in runners}
    for r in runners.values():
        for _ in range(5):
            r.run(x)
    for _ in range(3):  # interleaved rounds: a load change hits every runtime alike
        for n, r in runners.items():
            if len(runners) > 1:  # a runtime just switched to reads slow (see warm_up); one alone stays warm
                warm_up(lambda r=r: r.run(x))
            samples[n] += time_calls(lambda r=r: r.run(x), max(1, repeats // 3))
    out = []
    for n, r in runners.items():
        st = summarize(samples[n])
        out.append(LatencyEstimate(st.median_ms, "measured", f"{n} {r.version}", "fp32", "host"))
    return out


def _export_and_time(model: nn.Module, input_size: int, batch: int, oracle: LatencyOracle, repeats: int,
                     runtimes: tuple[str, ...]) -> list[LatencyEstimate]:
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return _time_host(oracle.export(model, input_size, Path(tmp)), input_size, batch, oracle.threads, repeats,
                              runtimes)
    finally:
        model.train(was_training)


def predicted_latencies(model: nn.Module, profiles: list[Profile], input_size: int, *, threads: int | None = None,
                        batch: int = 1) -> dict[str, LatencyEstimate]:
    """The roofline's latency on each predicted target, from one export per ONNX opset (what each
    target's runtime allows) and one graph analysis: what :func:`best_latency` gives per target,
    without exporting the model once for every target."""
    from edgekd.engines.latency.onnx_graph import analyze

    oracles = [LatencyOracle(p, threads=threads, batch=batch) for p in profiles if not p.measured_here]
    out: dict[str, LatencyEstimate] = {}
    was_training = model.training
    model.eval()
    try:
        for opset in sorted({o.opset for o in oracles}):
            same = [o for o in oracles if o.opset == opset]
            with tempfile.TemporaryDirectory() as tmp:
                layers = analyze(same[0].export(model, input_size, Path(tmp)), batch)
            out.update({o.profile.name: o.predicted(layers) for o in same})
    finally:
        model.train(was_training)
    return out


def _best(timed: list[Any], target: str) -> LatencyEstimate:
    """The fastest runtime's timing (estimates, or their dicts from the cache), stated for ``target``."""
    best = min((t if isinstance(t, LatencyEstimate) else LatencyEstimate(**t) for t in timed), key=lambda e: e.ms)
    best.target = target
    return best


def _host_key(model: nn.Module, oracle: LatencyOracle, input_size: int, runtimes: tuple[str, ...]) -> str:
    return timing_key(model, input_size=input_size, batch=oracle.batch, threads=oracle.threads, runtimes=runtimes)


def cached_latency(model: nn.Module, profile: Profile, input_size: int, *, threads: int | None = None,
                   batch: int = 1, runtimes: tuple[str, ...] = HOST_RUNTIMES) -> LatencyEstimate | None:
    """:func:`best_latency` from the timing cache alone on a measured target; None when it would time."""
    if not profile.measured_here:
        return None
    hit = lookup(_host_key(model, LatencyOracle(profile, threads=threads, batch=batch), input_size, runtimes))
    return _best(hit, profile.name) if hit else None


def best_latency(model: nn.Module, profile: Profile, input_size: int, *, threads: int | None = None,
                 batch: int = 1, repeats: int = 30, runtimes: tuple[str, ...] = HOST_RUNTIMES) -> LatencyEstimate:
    """The model's latency on ``profile`` on its best runtime of ``runtimes`` (measured on host, else
    predicted). Search candidates pass the one runtime the teacher was fastest in: the budget is
    the teacher's there, and one runtime halves the cost of scoring a space. A host timing of the
    same architecture on the same machine and runtimes is read from the timing cache (cache.py)."""
    oracle = LatencyOracle(profile, threads=threads, batch=batch, repeats=repeats)
    if not profile.measured_here:
        return oracle(model, input_size)
    key = _host_key(model, oracle, input_size, runtimes)
    hit = lookup(key)
    if hit:
        return _best(hit, profile.name)
    timed = _export_and_time(model, input_size, batch, oracle, repeats, runtimes)
    store(key, [asdict(e) for e in timed])
    return _best(timed, profile.name)
