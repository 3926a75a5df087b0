"""Timing harness: warm-up, repeats, robust statistics.

Timings on shared machines are noisy, so callers interleave the things they compare
(round-robin over models) and report medians and tail percentiles, never one run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class LatencyStats:
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    std_ms: float
    samples: int

    def as_dict(self) -> dict[str, float]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def percentile(sorted_vals: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list (q in [0, 100])."""
    if not sorted_vals:
        raise ValueError("no samples")
    k = (len(sorted_vals) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def summarize(samples_ms: list[float]) -> LatencyStats:
    s = sorted(samples_ms)
    return LatencyStats(
        median_ms=statistics.median(s),
        p90_ms=percentile(s, 90),
        p99_ms=percentile(s, 99),
        mean_ms=statistics.fmean(s),
        min_ms=s[0],
        std_ms=statistics.pstdev(s) if len(s) > 1 else 0.0,
        samples=len(s),
    )


def time_calls(fn: Callable[[], object], repeats: int, sync: Callable[[], None] | None = None) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls of ``fn`` (``sync`` waits for async devices)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def warm_up(fn: Callable[[], object], seconds: float = 0.1, sync: Callable[[], None] | None = None) -> None:
    """Call ``fn`` for ``seconds`` (at least twice) before a timed block. Why: right after
    another runtime's session ran, a model's first calls run several times slower (the other
    pool's threads still awake, caches cold), which would shift block medians
    (benchmarks/RESULTS.md, "How latency is timed")."""
    end = time.perf_counter() + seconds
    calls = 0
    while calls < 2 or time.perf_counter() < end:
        fn()
        calls += 1
    if sync is not None:
        sync()
