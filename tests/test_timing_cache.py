"""Host timings are cached by architecture, machine, runtimes and threads: a second timing of the
same network (other weights) is read back, another network or thread count is timed, and the
cache can be turned off."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgekd.core.profiles import resolve_target
from edgekd.engines.latency import budgets, cache
from edgekd.engines.models.build import build_model

KW = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 8}


def _net(width: int = 8, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet18", 10, {**KW, "channels": [width, 16, 32, 64]})


def test_the_architecture_key_ignores_weights_and_sees_shapes() -> None:
    assert cache.architecture(_net(seed=0)) == cache.architecture(_net(seed=1))
    assert cache.architecture(_net(8)) != cache.architecture(_net(16))


def test_a_second_timing_of_the_same_architecture_is_read_back(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKD_CACHE_DIR", str(tmp_path))
    host, _ = resolve_target("host")
    calls = []
    real = budgets._time_host

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(budgets, "_time_host", counted)
    first = budgets.best_latency(_net(seed=0), host, 16, threads=1, repeats=3)
    again = budgets.best_latency(_net(seed=1), host, 16, threads=1, repeats=3)
    assert len(calls) == 1 and again.ms == first.ms and again.kind == "measured"
    budgets.best_latency(_net(seed=0), host, 16, threads=2, repeats=3)  # another thread count: timed
    budgets.best_latency(_net(16), host, 16, threads=1, repeats=3)  # another network: timed
    assert len(calls) == 3
    assert len((tmp_path / cache.FILE).read_text().splitlines()) == 3
    cache._loaded.clear()  # a new process reads the file
    assert budgets.best_latency(_net(seed=2), host, 16, threads=1, repeats=3).ms == first.ms and len(calls) == 3
    cache.use_timing_cache(False)
    try:
        budgets.best_latency(_net(seed=0), host, 16, threads=1, repeats=3)
        assert len(calls) == 4
    finally:
        cache.use_timing_cache(True)
