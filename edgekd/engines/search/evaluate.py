"""Scoring one candidate: size, DisWOT similarity to the teacher, and budgets per target."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from edgekd.core.budgets import TargetBudget
from edgekd.core.formats import HOST_RUNTIMES
from edgekd.core.profiles import Profile
from edgekd.engines.latency.budgets import best_latency, predicted_latencies
from edgekd.engines.models.build import build_model
from edgekd.engines.models.stats import count_macs, count_params
from edgekd.engines.search.scoring import Signature, compare, signature


@dataclass
class Candidate:
    key: str
    model: str
    kwargs: dict[str, Any]
    genome: dict[str, Any]
    params: int
    macs: int | None
    semantic_distance: float
    relation_distance: float
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> estimate
    violations: list[str] = field(default_factory=list)
    combined: float | None = None
    seconds: float = 0.0
    pareto: dict[str, bool] = field(default_factory=dict)  # target -> on the score/latency front there

    @property
    def feasible(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feasible"] = self.feasible
        d["semantic"] = -self.semantic_distance
        d["relation"] = -self.relation_distance
        return d


class Constraints:
    """What a candidate must meet: the run's latency limit on every target (from its budgets,
    never computed here), and the size caps the user wrote."""

    def __init__(self, targets: list[Profile], *, limits: dict[str, TargetBudget], input_size: int,
                 threads: int | None, max_params_m: float | None = None, max_macs_m: float | None = None,
                 batch: int = 1) -> None:
        self.input_size = input_size
        self.targets = {t.name: t for t in targets}
        self.threads, self.batch = threads, batch
        self.limits = limits
        self.latency_limits = {name: b.ms for name, b in limits.items() if b.ms is not None}
        self.max_params_m, self.max_macs_m = max_params_m, max_macs_m

    def describe(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_limits, "basis": {n: b.basis for n, b in self.limits.items()},
                "speedup": {n: b.speedup for n, b in self.limits.items() if b.speedup} or None,
                "max_params_m": self.max_params_m, "max_macs_m": self.max_macs_m,
                "asked_ms": {n: b.asked for n, b in self.limits.items() if b.lowered},
                "why": {n: b.why for n, b in self.limits.items() if b.why}}

    def describe_line(self) -> str:
        """``host ≤0.197 ms (teacher 0.79 ms … / 4), jetson-orin-nano ≤0.213 ms (goal lowered: out of reach)``."""
        parts = []
        for n, b in self.limits.items():
            if b.ms is None:
                continue
            tag = "you set" if b.wall else ("default goal, lowered: out of reach" if b.lowered else "default goal")
            k = b.speedup_at(b.ms)
            parts.append(f"{n} ≤{b.ms:.3g} ms ({tag}" + (f", {k:.3g}× the teacher" if k else "") + ")")
        for what, v in (("params", self.max_params_m), ("MACs", self.max_macs_m)):
            if v is not None:
                parts.append(f"{what} ≤{v:g}M")
        return ", ".join(parts) or "none"

    def size_violations(self, params: int, macs: int | None) -> list[str]:
        v = []
        if self.max_params_m is not None and params / 1e6 > self.max_params_m:
            v.append(f"params {params / 1e6:.3f}M > {self.max_params_m}M")
        if self.max_macs_m is not None and macs is not None and macs / 1e6 > self.max_macs_m:
            v.append(f"MACs {macs / 1e6:.2f}M > {self.max_macs_m}M")
        return v

    def latency_violations(self, latency: dict[str, dict[str, Any]], *, walls_only: bool = False) -> list[str]:
        """Each target whose limit ``latency`` exceeds (``walls_only``: the limits the user wrote)."""
        return [f"latency on {name} {est['ms']:.3f} ms ({est['kind']}) > {self.latency_limits[name]:.3g} ms"
                for name, est in latency.items()
                if name in self.latency_limits and est["ms"] > self.latency_limits[name]
                and (self.limits[name].wall or not walls_only)]

    def latency(self, model: torch.nn.Module) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Latency on each target in the runtime the teacher's budget was measured in (on host:
        the teacher's fastest; elsewhere the target's predicted runtime), so the ratio is fair."""
        out = self.latency_on(model, list(self.targets))
        return out, self.latency_violations(out)

    def runtimes(self, name: str) -> tuple[str, ...]:
        return self.limits[name].runtimes if name in self.limits else HOST_RUNTIMES

    def latency_on(self, model: torch.nn.Module, names: list[str]) -> dict[str, dict[str, Any]]:
        """:meth:`latency` on these targets only (the predicted ones from one export)."""
        out = {name: asdict(best_latency(model, self.targets[name], self.input_size, threads=self.threads,
                                         batch=self.batch, runtimes=self.runtimes(name)))
               for name in names if self.targets[name].measured_here}
        predicted = [self.targets[n] for n in names if not self.targets[n].measured_here]
        if predicted:
            found = predicted_latencies(model, predicted, self.input_size, threads=self.threads, batch=self.batch)
            out.update({n: asdict(e) for n, e in found.items()})
        return {n: out[n] for n in names}


def evaluate_candidate(
    key: str, model_name: str, kwargs: dict[str, Any], genome: dict[str, Any], *, num_classes: int,
    teacher: Signature, x: torch.Tensor, y: torch.Tensor, budgets: Constraints | None, seed: int,
    built: dict[str, torch.nn.Module] | None = None,
) -> Candidate:
    """Build the candidate at random init (seeded), score it, check its size budgets. Latency is
    :func:`time_candidate`'s job: scoring may be split over the ranks of a torchrun, timing may not.
    ``built`` receives the network under ``key``, so timing it does not build it again."""
    t0 = time.perf_counter()
    model = build_candidate(model_name, kwargs, num_classes, seed)
    if built is not None:
        built[key] = model
    params = count_params(model)
    macs = count_macs(model, x.shape[-1])
    scores = compare(teacher, signature(model, x, y))
    cand = Candidate(key, model_name, dict(kwargs), dict(genome), params, macs,
                     scores.semantic_distance, scores.relation_distance)
    if budgets is not None:
        cand.violations = budgets.size_violations(params, macs)
    cand.seconds = round(time.perf_counter() - t0, 3)
    return cand


def time_candidate(cand: Candidate, budgets: Constraints, *, num_classes: int, seed: int,
                   model: torch.nn.Module | None = None, known: dict[str, dict[str, Any]] | None = None) -> None:
    """Fill in ``cand``'s latency on every target and its latency violations. Only for candidates
    that fit the size budgets (timing is the expensive check). Run by one process at a time: a
    timing taken while another rank computes on the same cores reads slow and noisy."""
    if cand.violations:
        return
    if known is not None and set(budgets.targets) <= set(known):  # timed already (the budgets' probes)
        cand.latency = {n: known[n] for n in budgets.targets}
        cand.violations = budgets.latency_violations(cand.latency)
        return
    t0 = time.perf_counter()
    model = model if model is not None else build_candidate(cand.model, cand.kwargs, num_classes, seed)
    cand.latency, cand.violations = budgets.latency(model)
    cand.seconds = round(cand.seconds + time.perf_counter() - t0, 3)


def build_candidate(model_name: str, kwargs: dict[str, Any], num_classes: int, seed: int) -> torch.nn.Module:
    """A candidate at its seeded initial weights: scoring, timing and the timing cache see one network."""
    torch.manual_seed(seed + 1)  # the same architecture always gets the same initial weights
    return build_model(model_name, num_classes, kwargs, what="search candidate")
