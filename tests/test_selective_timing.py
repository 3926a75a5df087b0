"""The search times only the candidates that can change its choice: the fit, and the pick it keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_config
from torch import nn

from edgekd.engines.latency.fitted import Cost, cost_of, fit_latency

SPACE = {"name": "resnet", "widths": [8, 16, 24, 32], "depths": [1, 2], "stems": ["3x3"]}  # 64 candidates


def test_cost_counts_kernels_and_pads_output_channels_to_the_cpu_block() -> None:
    net = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(24, 10))
    cost = cost_of(net, 8, block=16)
    assert cost.kernels == 3  # conv, pool, linear: BatchNorm and ReLU fold into the conv
    assert cost.macs == 8 * 8 * 32 * 3 * 9 + 16 * 24  # 24 output channels run as 32, 10 outputs as 16
    assert cost.activations == 24 * 64 + 24 + 10
    assert cost_of(net, 8, block=8).macs == 8 * 8 * 24 * 3 * 9 + 16 * 24


def test_the_fit_recovers_a_linear_cost_and_states_its_own_error() -> None:
    costs = [Cost(k, m * 1e6, a * 1e6) for k, m, a in [(10, 1, 0.1), (20, 2, 0.3), (15, 8, 0.2), (40, 3, 0.5),
                                                       (30, 12, 0.9), (12, 5, 0.1), (25, 1, 0.7)]]
    ms = [0.02 + 0.003 * c.kernels + 0.01 * c.macs / 1e6 for c in costs]
    fit = fit_latency(costs, ms, "onnxruntime")
    assert fit is not None and fit.band == pytest.approx(0.15)  # exact data: the floor, timing noise
    assert fit.predict(Cost(50, 20e6, 1e6)) == pytest.approx(0.02 + 0.15 + 0.2, rel=1e-3)
    noisy = [m * (1.3 if i == 3 else 1.0) for i, m in enumerate(ms)]
    assert fit_latency(costs, noisy, "onnxruntime").band > 0.3  # a 30% outlier widens the band past it
    assert fit_latency(costs[:5], ms[:5], "onnxruntime") is None  # too few to judge its own error


def _fake_host_timing(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Host 'timings' from a formula the fit cannot follow exactly (a step at 16 channels), so the
    test judges the selection, not this machine's noise; a timing cache of its own, so no real
    timing another test stored for the same architecture is read."""
    from edgekd.core.estimates import LatencyEstimate
    from edgekd.engines.latency import budgets

    monkeypatch.setenv("EDGEKD_CACHE_DIR", str(cache))

    def timed(model: nn.Module, input_size: int, *_args, **_kw) -> list[LatencyEstimate]:
        cost = cost_of(model, input_size, block=1)
        wide = sum(m.out_channels > 16 for m in model.modules() if isinstance(m, nn.Conv2d))
        ms = 0.01 + 0.002 * cost.kernels + 0.004 * cost.macs / 1e6 + 0.0005 * wide
        return [LatencyEstimate(ms, "measured", "onnxruntime fake", "fp32", "host")]

    monkeypatch.setattr(budgets, "_export_and_time", timed)


def _search(tmp_path: Path, timing: str, targets: list[str]) -> tuple[dict, list[dict]]:
    import edgekd

    cfg = tiny_config(tmp_path, stages=["search"], name=f"s-{timing}")
    cfg["teacher"]["kwargs"] = {"channels": [64, 128, 256, 512]}  # not trained: the search scores its architecture
    cfg["search"] = {"space": SPACE, "timing": timing, "constraints": {"speedup": 2}}
    edgekd.compress(cfg, targets, quiet=True)
    run = tmp_path / f"s-{timing}"
    metrics = json.loads((run / "manifest.json").read_text())["stages"]["search"]["metrics"]
    return metrics, json.loads((run / "search" / "candidates.json").read_text())


def test_selective_timing_keeps_the_exhaustive_pick_with_fewer_timings(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_host_timing(monkeypatch, tmp_path / "cache")
    targets = ["host", "raspberry-pi-5"]
    sel, sel_cands = _search(tmp_path, "selective", targets)
    full, full_cands = _search(tmp_path, "all", targets)
    assert sel["chosen"]["key"] == full["chosen"]["key"]
    assert sel["timing"]["mode"] == "selective" and full["timing"] == {"mode": "all"}
    host = lambda cands, kind: [c for c in cands if c["latency"].get("host", {}).get("kind") == kind]  # noqa: E731
    assert len(host(full_cands, "measured")) == 64 and not host(full_cands, "predicted")
    assert sel["timing"]["timed"] == len(host(sel_cands, "measured")) < 40
    assert sel["timing"]["timed"] + sel["timing"]["predicted"] == 64
    for c in host(sel_cands, "predicted"):  # labelled with what the prediction rests on
        assert c["latency"]["host"]["band"] >= 0.15 and "fitted on" in c["latency"]["host"]["runtime"]
    assert sel["chosen"]["latency"]["host"]["kind"] == "measured"
    assert all(c["latency"]["host"]["kind"] == "measured" for c in sel_cands if c["pareto"].get("host"))
    # a candidate whose whole band is over the host budget was not exported for the Pi either
    out = [c for c in host(sel_cands, "predicted") if any("at least" in v for v in c["violations"])]
    assert out and all("raspberry-pi-5" not in c["latency"] for c in out)
    # what stays predicted below the pick is judged by its prediction, not called feasible over the budget
    limit = sel["budgets"]["latency_ms"]["host"]
    assert all(not c["feasible"] for c in host(sel_cands, "predicted") if c["latency"]["host"]["ms"] > limit)


def test_what_selective_timing_left_untimed_could_not_have_been_picked(tmp_path: Path) -> None:
    """On this machine's real timings: every candidate scoring above the pick was timed over the
    budget, or predicted over it by more than the fit's stated error."""
    sel, cands = _search(tmp_path, "selective", ["host"])
    limit = sel["budgets"]["latency_ms"]["host"]
    pick = sel["chosen"]["score"]
    above = [c for c in cands if c["combined"] > pick]
    for c in above:
        est = c["latency"]["host"]
        if est["kind"] == "measured":
            assert est["ms"] > limit, c["key"]
        else:
            assert est["ms"] / (1 + est["band"]) > limit, c["key"]
