"""Did a pruning step pay? Fewer MACs is not fewer milliseconds.

Halving MobileNetV3's MACs can make it *slower* in ONNX Runtime (odd channel counts fall
off the kernels' blocked paths, and depthwise layers are memory-bound), so
every step is judged on latency, target by target. A step pays when it is faster beyond
noise on at least one target and slower beyond noise on none. The noise margin is wider
for a measured latency (timing on a shared machine jitters by a few percent even as a
median of interleaved rounds) than for a predicted one (the roofline is deterministic,
so a small margin only stops steps that change nothing that matters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NOISE = {"measured": 0.05, "predicted": 0.01}  # relative change that counts as a real change


@dataclass
class Verdict:
    pays: bool
    reason: str
    faster: list[str] = field(default_factory=list)
    slower: list[str] = field(default_factory=list)


def noise_margin(kind: str) -> float:
    return NOISE.get(kind, NOISE["measured"])


def _change(name: str, b: dict[str, Any], a: dict[str, Any]) -> str:
    pct = 100 * (a["ms"] / b["ms"] - 1)
    return f"{name} {b['ms']:.4g} → {a['ms']:.4g} ms ({pct:+.1f}%, {a['kind']}, noise ±{100 * noise_margin(a['kind']):g}%)"


def step_verdict(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> Verdict:
    """Judge one step from the latency per target before and after it (LatencyEstimate dicts)."""
    faster, slower = [], []
    for name, b in before.items():
        a = after[name]
        margin = noise_margin(a["kind"])
        if a["ms"] < b["ms"] * (1 - margin):
            faster.append(name)
        elif a["ms"] > b["ms"] * (1 + margin):
            slower.append(name)
    if slower:
        why = "slower on " + "; ".join(_change(n, before[n], after[n]) for n in slower)
        return Verdict(False, why, faster, slower)
    if not faster:
        why = "not faster beyond noise on any target: " + "; ".join(_change(n, before[n], after[n]) for n in before)
        return Verdict(False, why, faster, slower)
    return Verdict(True, "faster on " + "; ".join(_change(n, before[n], after[n]) for n in faster), faster, slower)
