"""The search as a trade-off: per target, the Pareto front of DisWOT score against latency,
and where the teacher itself sits on the same axes.

The pick stays the best-scored candidate under the budget; the front shows what a
different budget would buy (a faster candidate that scores a little worse, or the reverse),
so a user can choose the speed-up knowingly instead of trusting one similarity number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from edgekd.engines.models.stats import count_macs
from edgekd.engines.search.evaluate import Candidate
from edgekd.engines.search.scoring import Normalizer, Signature, compare

Point = tuple[float, float]  # (score: higher is better, latency ms: lower is better)


def pareto_flags(points: Sequence[Point | None]) -> list[bool]:
    """Which points no other point beats: at least as good on both axes and better on one.

    ``None`` (no latency, or no score) is never on the front. Exact ties (same score, same
    latency) are all on the front, since neither dominates the other; a point with the same
    score as another but a higher latency is dominated, and so is one with the same latency
    and a lower score.
    """
    flags = [False] * len(points)
    valid = [i for i, p in enumerate(points) if p is not None and not any(math.isnan(v) for v in p)]
    best: Point | None = None  # the best-scoring point among the faster ones seen so far
    for i in sorted(valid, key=lambda i: (points[i][1], -points[i][0])):  # type: ignore[index]
        score, ms = points[i]  # type: ignore[misc]
        if best is None or score > best[0]:
            flags[i], best = True, (score, ms)
        elif score == best[0] and ms == best[1]:
            flags[i] = True
    return flags


def mark_front(cands: list[Candidate], targets: list[str]) -> dict[str, list[str]]:
    """Set every candidate's ``pareto`` flags; the keys on each target's front, fastest first.
    Only candidates with a latency on that target (those within the size budgets) compete."""
    front: dict[str, list[str]] = {}
    for t in targets:
        pts = [(c.combined, c.latency[t]["ms"]) if t in c.latency and c.combined is not None else None
               for c in cands]
        flags = pareto_flags(pts)
        for c, on in zip(cands, flags, strict=True):
            c.pareto[t] = on
        front[t] = [c.key for c in sorted((c for c, on in zip(cands, flags, strict=True) if on),
                                          key=lambda c: c.latency[t]["ms"])]
    return front


def scatter_points(cands: list[Candidate], targets: list[str]) -> dict[str, list[dict[str, Any]]]:
    """What the report's score-vs-latency panels plot: every candidate with a latency, per target."""
    return {t: [{"key": c.key, "score": c.combined, "ms": c.latency[t]["ms"], "kind": c.latency[t]["kind"],
                 "feasible": c.feasible, "pareto": c.pareto.get(t, False)}
                for c in cands if t in c.latency and c.combined is not None]
            for t in targets}


def teacher_point(teacher_latency: dict[str, Any], teacher: torch.nn.Module, sig: Signature, norm: Normalizer | None,
                  params: int, input_size: int) -> dict[str, Any]:
    """The teacher on the same axes: its latency per target, size, and its score against itself.

    Its distances to itself are 0, so its combined score is 0: the best any candidate could
    reach (every candidate scores ≤ 0). ``teacher_latency`` is the one the run's budgets were
    resolved from (timed once per run, before training), by target.
    """
    s = compare(sig, sig)
    combined = (norm.combined(s) if norm is not None else -(s.semantic_distance + s.relation_distance)) + 0.0  # no -0.0
    latency = {name: {"ms": e.ms, "kind": e.kind, "runtime": e.runtime} for name, e in teacher_latency.items()}
    return {"latency": latency, "params": params, "macs": count_macs(teacher, input_size),
            "combined": combined, "note": "the teacher compared with itself: distances 0, the best possible score"}
