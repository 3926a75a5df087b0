"""How fast each target can get from this teacher and search space, known before training.

The verdict "this budget cannot be met" needs no trained weights: latency depends on the
architecture alone. So before the teacher trains, the run times (host) or predicts (other
targets) the candidates that bound the space (``SearchSpace.fastest_genomes``) and the
teacher architecture pruned as far as torch-pruning goes. Seconds, where finding out after
training would cost the teacher's whole training time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from edgekd.core.budgets import Reach
from edgekd.core.errors import PruningError
from edgekd.core.formats import HOST_RUNTIMES
from edgekd.core.profiles import Profile
from edgekd.engines.latency.budgets import best_latency
from edgekd.engines.latency.oracle import LatencyEstimate
from edgekd.engines.search.spaces import SearchSpace

Measure = Callable[[nn.Module, Profile], LatencyEstimate]


def latency_measure(input_size: int, threads: int | None,
                    runtimes: dict[str, tuple[str, ...]]) -> Measure:
    """A model's latency on a target the way search times it (host: the teacher's fastest runtime)."""
    def measure(model: nn.Module, profile: Profile) -> LatencyEstimate:
        return best_latency(model, profile, input_size, threads=threads,
                            runtimes=runtimes.get(profile.name, HOST_RUNTIMES))
    return measure


def space_reach(space: SearchSpace, build: Callable[[str, dict], nn.Module], targets: list[Profile],
                measure: Measure, timed: dict[str, dict[str, Any]] | None = None) -> dict[str, tuple[float, str, str]]:
    """Per target: (ms, candidate key, kind) of the fastest of the space's bounding candidates.
    ``timed`` receives every probe's estimates by candidate key, for the search to reuse."""
    best: dict[str, tuple[float, str, str]] = {}
    for genome in space.fastest_genomes():
        name, kwargs = space.model(genome)
        model = build(name, kwargs)
        key = space.key(genome)
        for p in targets:
            est = measure(model, p)
            if timed is not None:
                timed.setdefault(key, {})[p.name] = asdict(est)
            if p.name not in best or est.ms < best[p.name][0]:
                best[p.name] = (est.ms, key, est.kind)
    return best


def pruned_teacher_reach(teacher: nn.Module, input_size: int, round_to: int | None, targets: list[Profile],
                         measure: Measure, *, shallow: bool = False) -> tuple[dict[str, float], str | None]:
    """Per target, the latency of the teacher architecture pruned as far as torch-pruning allows
    (magnitude, per layer: the student source's own pruner), after removing every droppable
    residual block when ``shallow``; ``({}, why)`` when it cannot be pruned."""
    from edgekd.engines.pruning.blocks import drop_blocks
    from edgekd.engines.pruning.structured import magnitude_pruner

    example = torch.randn(1, 3, input_size, input_size)
    teacher = copy.deepcopy(teacher).eval()
    if shallow and not drop_blocks(teacher):
        return {}, "no residual block with an identity shortcut to remove"
    try:
        pruner = magnitude_pruner(teacher, example, round_to)
        pruner.step_until(lambda: False)  # to the end
    except PruningError as exc:
        return {}, f"torch-pruning cannot prune the teacher: {exc.message}"
    return {p.name: measure(teacher, p).ms for p in targets}, None


def reach_of(space_best: dict[str, tuple[float, str, str]], pruned: dict[str, float], shallow: dict[str, float],
             target: str, kind: str) -> Reach:
    ms, key, k = space_best.get(target, (None, None, kind))
    return Reach(fastest_ms=ms, fastest=key, pruned_teacher_ms=pruned.get(target), kind=k,
                 pruned_shallow_ms=shallow.get(target))
