"""Measuring latency side by side: every candidate is timed in interleaved rounds.

Shared machines drift (other jobs, turbo, thermal), so models are not timed one after
another: each round times every runner in turn, and the medians pool all rounds. While a
model's round medians disagree by more than ``bench.stable_spread`` more rounds follow, up to
``bench.max_rounds``; a record still unstable then says so (as pyperf warns that a result "may
be unstable"), so a verdict read from it can be taken with that. Every
record says what it is: measured, on which runtime and version, precision, batch size,
threads and device.
"""

from __future__ import annotations

import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.core.config import BenchConfig
from edgekd.core.progress import SILENT, Reporter
from edgekd.engines.latency.timing import percentile, summarize, time_calls, warm_up
from edgekd.engines.runtimes.base import Runner, default_threads, get_runtime


@dataclass
class BenchItem:
    model: str  # teacher | student | pruned | quantized
    format: str  # torch | onnx | openvino | tensorrt
    precision: str
    path: Path
    runtime: str
    device: str = "cpu"


@dataclass
class LatencyRecord:
    model: str
    runtime: str
    format: str
    precision: str
    batch_size: int
    threads: int | None
    device: str
    target: str
    kind: str  # measured | predicted
    median_ms: float
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    throughput_ips: float | None = None
    samples: int | None = None
    runtime_version: str = ""
    rss_increase_mb: float | None = None
    round_medians_ms: list[float] | None = None  # measured: each interleaved round's median, in order
    unstable: bool = False  # measured: the round medians still disagreed after bench.max_rounds
    host: str = field(default_factory=lambda: f"{platform.machine()} {platform.processor() or platform.system()}")
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


def measure_items(
    items: list[BenchItem],
    x: np.ndarray,
    cfg: BenchConfig,
    *,
    target: str = "host",
    reporter: Reporter = SILENT,
) -> list[LatencyRecord]:
    """Load every item, warm each up, then time them round-robin; one record per item."""
    threads = cfg.threads or default_threads()
    loaded: list[tuple[BenchItem, Runner, float | None]] = []
    for it in items:
        before = _rss_mb()
        runner = get_runtime(it.runtime).load(it.path, precision=it.precision, threads=threads, device=it.device)
        for _ in range(max(1, cfg.warmup)):
            runner.run(x)
        after = _rss_mb()
        loaded.append((it, runner, (after - before) if before is not None and after is not None else None))
    if not loaded:
        return []
    samples: list[list[float]] = [[] for _ in loaded]
    rounds: list[list[float]] = [[] for _ in loaded]  # each round's median, per item
    with reporter.task("bench", total=cfg.rounds * len(loaded)) as advance:
        while len(rounds[0]) < cfg.rounds or (len(rounds[0]) < cfg.max_rounds and
                                              any(spread(r) > cfg.stable_spread for r in rounds)):
            for i, (it, runner, _) in enumerate(loaded):
                warm_up(lambda r=runner: r.run(x), sync=runner.sync)  # every block: see warm_up
                block = time_calls(lambda r=runner: r.run(x), cfg.repeats, runner.sync)
                samples[i] += block
                rounds[i].append(statistics.median(block))
                advance(1, status=f"{it.model} {it.runtime} {it.precision}",
                        total=max(cfg.rounds, len(rounds[0])) * len(loaded))  # an extra round grows the bar
    records = []
    for (it, runner, rss), s, r in zip(loaded, samples, rounds, strict=True):
        st = summarize(s)
        unstable = spread(r) > cfg.stable_spread
        notes = "; ".join(n for n in (runner.notes, f"unstable: {rounds_text(r)}" if unstable else "") if n)
        records.append(LatencyRecord(
            model=it.model, runtime=it.runtime, format=it.format, precision=it.precision,
            batch_size=int(x.shape[0]), threads=runner.threads, device=it.device, target=target,
            kind="measured", median_ms=round(st.median_ms, 5), p90_ms=round(st.p90_ms, 5),
            p99_ms=round(st.p99_ms, 5), mean_ms=round(st.mean_ms, 5),
            throughput_ips=round(x.shape[0] / st.median_ms * 1e3, 2), samples=st.samples,
            runtime_version=runner.version,
            rss_increase_mb=round(rss, 2) if rss is not None else None, notes=notes,
            round_medians_ms=[round(v, 5) for v in r], unstable=unstable,
        ))
    return records


def rounds_text(round_medians: list[float]) -> str:
    """A record's rounds in words, as the notes, the report's reasons and budget basis say them."""
    return f"round medians {min(round_medians):.3g}-{max(round_medians):.3g} ms over {len(round_medians)} rounds"


def spread(round_medians: list[float]) -> float:
    """How far a model's rounds disagree: upper / lower quartile of its round medians - 1.

    Rounds are seconds apart, so a spread is the machine changing under the bench (another
    job, the VM host): on a quiet hour round medians agree closely; on a busy one a small file
    can read more than twice its quiet time for a while (benchmarks/RESULTS.md, "How steady a
    bench reading is"). Quartiles, not the extremes: two busy rounds among
    seven quiet ones leave the median the quiet reading, and the bench can stop there."""
    if len(round_medians) < 2:
        return 0.0
    s = sorted(round_medians)
    return percentile(s, 75) / percentile(s, 25) - 1


def speedups(records: list[LatencyRecord]) -> dict[str, Any]:
    """Each model's fastest record against the teacher's eager and its fastest runtime."""
    by_model: dict[str, list[LatencyRecord]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    teacher = by_model.get("teacher", [])
    eager = next((r for r in teacher if r.runtime == "torch" and r.precision == "fp32"), None)
    t_best = min(teacher, key=lambda r: r.median_ms) if teacher else None
    out: dict[str, Any] = {}
    if t_best:
        out["teacher_best"] = {"runtime": t_best.runtime, "precision": t_best.precision, "median_ms": t_best.median_ms}
    for model, recs in by_model.items():
        best = min(recs, key=lambda r: r.median_ms)
        row: dict[str, Any] = {"best_runtime": best.runtime, "best_precision": best.precision,
                               "best_median_ms": best.median_ms}
        if eager:
            row["speedup_vs_teacher_eager"] = round(eager.median_ms / best.median_ms, 3)
        if t_best:
            row["speedup_vs_teacher_best"] = round(t_best.median_ms / best.median_ms, 3)
        out[model] = row
    return out
