"""Bench rounds: more interleaved rounds while the machine changes under the bench, and a
record that still disagrees with itself says so (latency/measure.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekd.core.config import BenchConfig
from edgekd.engines.latency import measure
from edgekd.engines.latency.measure import BenchItem, measure_items, spread


class _Runner:
    threads, version, notes = 2, "fake 1", ""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, x: np.ndarray) -> None:
        pass

    def sync(self) -> None:
        pass


class _Backend:
    def load(self, path: Path, **_: Any) -> _Runner:
        return _Runner(Path(path).stem)


def _bench(monkeypatch: pytest.MonkeyPatch, ms: dict[str, list[float]], **cfg: Any) -> dict[str, Any]:
    """Time fake files whose round i takes ``ms[name][i]`` ms per call (the last value repeats)."""
    calls: dict[str, int] = {}

    def fake_time_calls(fn: Any, repeats: int, sync: Any = None) -> list[float]:
        name = fn.__defaults__[0].name
        i = calls.get(name, 0)
        calls[name] = i + 1
        return [ms[name][min(i, len(ms[name]) - 1)]] * repeats

    monkeypatch.setattr(measure, "get_runtime", lambda name: _Backend())
    monkeypatch.setattr(measure, "time_calls", fake_time_calls)
    monkeypatch.setattr(measure, "warm_up", lambda *a, **k: None)
    items = [BenchItem(n, "onnx", "fp32", Path(f"{n}.onnx"), "onnxruntime") for n in ms]
    recs = measure_items(items, np.zeros((1, 3, 8, 8), np.float32), BenchConfig(warmup=0, repeats=5, **cfg))
    return {r.model: r for r in recs}


def test_a_quiet_bench_takes_the_configured_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _bench(monkeypatch, {"teacher": [0.80, 0.82, 0.78], "pruned": [0.11, 0.115, 0.11]})
    assert [len(r.round_medians_ms) for r in got.values()] == [3, 3]
    assert not any(r.unstable for r in got.values()) and got["pruned"].median_ms == 0.11


def test_rounds_that_disagree_are_followed_by_more_until_they_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy hour on a shared machine: a 0.11 ms file reads 0.28 ms for a while. More rounds follow until
    the middle half of the rounds agree; the median is then the quiet reading."""
    busy = {"teacher": [1.0, 1.0, 0.8], "pruned": [0.28, 0.28, 0.11]}
    got = _bench(monkeypatch, busy)
    assert len(got["pruned"].round_medians_ms) == 9  # 7 quiet rounds of 9 before the quartiles agree
    assert got["pruned"].median_ms == 0.11 and got["teacher"].median_ms == 0.8
    assert not got["pruned"].unstable
    # the bench without extra rounds kept the busy reading (2 busy rounds of 3), and says so
    fixed = _bench(monkeypatch, busy, max_rounds=3)["pruned"]
    assert fixed.median_ms == 0.28 and fixed.unstable
    assert "unstable: round medians 0.11-0.28 ms over 3 rounds" in fixed.notes


def test_a_machine_that_never_settles_is_said_to(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _bench(monkeypatch, {"teacher": [0.8] * 9, "pruned": [0.11, 0.28] * 5})["pruned"]
    assert len(got.round_medians_ms) == 9 and got.unstable


def test_more_rounds_stop_as_soon_as_the_rounds_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _bench(monkeypatch, {"teacher": [1.0, 1.2, 1.1]})  # within 25%: the configured 3 rounds
    assert len(got["teacher"].round_medians_ms) == 3 and not got["teacher"].unstable
    got = _bench(monkeypatch, {"teacher": [1.0, 1.6, 1.1]})  # quartiles 29% apart: one more round settles it
    assert len(got["teacher"].round_medians_ms) == 4 and not got["teacher"].unstable
    assert spread([1.0, 1.1, 1.6]) == pytest.approx(1.35 / 1.05 - 1) and spread([0.5]) == 0.0
