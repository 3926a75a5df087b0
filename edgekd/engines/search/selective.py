"""Timing only the candidates that can change the choice.

Timing one candidate on host means exporting it to ONNX and running it in the runtime:
0.1–0.3 s, against ~10 ms to score it. The choice needs far fewer timings than the space
has candidates: the pick is the best-scored candidate within the budget, so a candidate
that scores better but is surely over the budget, or one that scores worse than a
candidate timed within it, cannot change it. So, per host target:

1. a sample is timed (the budgets' probes, free, and a few drawn across the space) and a
   latency model fitted to it (latency/fitted.py), with its leave-one-out error as a band;
2. every candidate gets a predicted host latency (labelled ``predicted``, with what it was
   fitted on); one whose band lies wholly over the budget is out, and is not even exported
   for the predicted targets;
3. walking down the ranking, every candidate whose band reaches under the budget is timed,
   until the first one timed within it (for each space of a mixed search: the
   other-family picks), then every candidate on the score/latency front that is still
   predicted, until the front is made of timed candidates.

A timing in the cache (cache.py) counts as timed and costs nothing. ``search.timing: all``
times every candidate, as before.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from edgekd.core.estimates import LatencyEstimate
from edgekd.engines.latency.budgets import cached_latency
from edgekd.engines.latency.fitted import Cost, FittedLatency, cost_of, fit_latency
from edgekd.engines.search.evaluate import Candidate, Constraints
from edgekd.engines.search.spaces import SearchSpace
from edgekd.engines.search.tradeoff import mark_front

SAMPLE = 10  # candidates drawn across the space and timed for the fit, besides the probes
MAX_FRONT_ROUNDS = 10
Build = Callable[[Candidate], torch.nn.Module]


class SelectiveTiming:
    """Host latency of the search's candidates: predicted for all, timed where it decides."""

    def __init__(self, budgets: Constraints, build: Build, input_size: int) -> None:
        self.budgets, self.build, self.input_size = budgets, build, input_size
        self.hosts = [n for n, p in budgets.targets.items() if p.measured_here]
        self.devices = [n for n in budgets.targets if n not in self.hosts]
        self.fits: dict[str, FittedLatency] = {}
        self.timed: set[str] = set()  # candidate keys with a host timing (measured, or read from the cache)
        self.sampled: dict[str, dict[str, dict[str, Any]]] = {}  # the fit's timings by candidate key

    # -- 1. the fit ---------------------------------------------------------------------------------
    def calibrate(self, space: SearchSpace, build: Callable[[dict], torch.nn.Module],
                  probes: dict[str, dict[str, Any]], seed: int) -> None:
        """Time the probes (their timings are known) and ``SAMPLE`` candidates drawn across the space, and fit."""
        if not self.hosts:
            return
        genomes = list(space.fastest_genomes())
        seen = {space.key(g) for g in genomes}
        rng = random.Random(seed + 7919)  # its own draws: the searcher's stay as they were
        for _ in range(SAMPLE * 20):
            if len(genomes) >= len(space.fastest_genomes()) + SAMPLE:
                break
            g = space.random_genome(rng)
            if space.key(g) not in seen:
                seen.add(space.key(g))
                genomes.append(g)
        samples: dict[str, list[tuple[Cost, float, str]]] = {h: [] for h in self.hosts}
        for g in genomes:
            key, model = space.key(g), build(g)
            cost = cost_of(model, self.input_size)
            self.sampled[key] = {h: probes.get(key, {}).get(h) or asdict(self._time(model, h)) for h in self.hosts}
            for h in self.hosts:
                samples[h].append((cost, self.sampled[key][h]["ms"], self.sampled[key][h]["runtime"]))
        for h, rows in samples.items():
            fit = fit_latency([c for c, _, _ in rows], [ms for _, ms, _ in rows], rows[-1][2] if rows else "?")
            if fit is not None:
                self.fits[h] = fit

    def _time(self, model: torch.nn.Module, host: str) -> LatencyEstimate:
        from edgekd.engines.latency.budgets import best_latency

        return best_latency(model, self.budgets.targets[host], self.input_size, threads=self.budgets.threads,
                            batch=self.budgets.batch, runtimes=self.budgets.runtimes(host))

    # -- 2. every candidate -------------------------------------------------------------------------
    def estimate(self, cand: Candidate, model: torch.nn.Module | None, known: dict[str, Any] | None) -> None:
        """``cand``'s latency: host from the probes, the cache or the fit; the predicted targets
        (roofline) unless host already rules it out."""
        if cand.violations:  # over a size cap: never timed
            return
        model = model if model is not None else self.build(cand)
        known = {**self.sampled.get(cand.key, {}), **(known or {})}
        for h in self.hosts:
            if h in known:
                cand.latency[h] = known[h]
                self.timed.add(cand.key)
                continue
            hit = cached_latency(model, self.budgets.targets[h], self.input_size, threads=self.budgets.threads,
                                 batch=self.budgets.batch, runtimes=self.budgets.runtimes(h))
            if hit is not None or h not in self.fits:
                cand.latency[h] = asdict(hit if hit is not None else self._time(model, h))
                self.timed.add(cand.key)
                continue
            cost = cost_of(model, self.input_size)
            fit = self.fits[h]
            cand.latency[h] = {**asdict(LatencyEstimate(fit.predict(cost), "predicted", fit.describe(), "fp32", h)),
                               "band": round(fit.band, 3)}
        if not self._out_on_host(cand):
            cand.latency.update({d: known[d] for d in self.devices if d in known})
            cand.latency.update(self.budgets.latency_on(model, [d for d in self.devices if d not in known]))
        self._judge(cand)

    def _lower(self, cand: Candidate, host: str) -> float:
        est = cand.latency[host]
        return est["ms"] / (1 + est["band"]) if est["kind"] == "predicted" else est["ms"]

    def _out_on_host(self, cand: Candidate) -> bool:
        """Over a host budget even at the fast end of its band."""
        limits = self.budgets.latency_limits
        return any(h in limits and h in cand.latency and self._lower(cand, h) > limits[h] for h in self.hosts)

    def _judge(self, cand: Candidate, *, settled: bool = False) -> None:
        """Violations: while the search runs, a predicted host latency violates only when its whole
        band is over the budget; once the pick is settled (``settled``), by the prediction itself,
        so that the report does not call a candidate predicted over the budget feasible."""
        size = self.budgets.size_violations(cand.params, cand.macs)
        exact = {n: e for n, e in cand.latency.items() if e["kind"] != "predicted" or n not in self.hosts}
        limits = self.budgets.latency_limits
        over = []
        for h in (h for h in self.hosts if h in cand.latency and h not in exact and h in limits):
            est = cand.latency[h]
            if self._lower(cand, h) > limits[h]:
                over.append(f"latency on {h} at least {self._lower(cand, h):.3f} ms (predicted {est['ms']:.3f} ms "
                            f"±{est['band']:.0%}) > {limits[h]:.3g} ms")
            elif settled and est["ms"] > limits[h]:
                over.append(f"latency on {h} {est['ms']:.3f} ms (predicted, not timed: ranked below the pick) > "
                            f"{limits[h]:.3g} ms")
        cand.violations = size + self.budgets.latency_violations(exact) + over

    # -- 3. what decides ----------------------------------------------------------------------------
    def predicted(self, cand: Candidate) -> bool:
        return any(cand.latency.get(h, {}).get("kind") == "predicted" for h in self.hosts)

    def time(self, cand: Candidate) -> None:
        """Time ``cand`` on host now (a candidate host ruled out gets its predicted targets too)."""
        model = self.build(cand)
        missing = [d for d in self.devices if d not in cand.latency]
        cand.latency.update({h: asdict(self._time(model, h)) for h in self.hosts})
        cand.latency.update(self.budgets.latency_on(model, missing))
        self.timed.add(cand.key)
        self._judge(cand)

    def confirm(self, ranked: list[Candidate], space_of: Callable[[Candidate], Any]) -> None:
        """Time what can change the pick (per space) and the front; ``ranked``: best score first."""
        if not self.fits:
            return
        spaces = {space_of(c) for c in ranked}
        for c in ranked:
            if not spaces:
                break
            if c.violations or space_of(c) not in spaces:
                continue
            if self.predicted(c):
                self.time(c)
            if c.feasible:
                spaces.discard(space_of(c))
        for _ in range(MAX_FRONT_ROUNDS):
            front = mark_front(ranked, self.hosts)
            on = {k for keys in front.values() for k in keys}
            todo = [c for c in ranked if c.key in on and self.predicted(c)]
            if not todo:
                break
            for c in todo:
                self.time(c)
        for c in ranked:  # what stays predicted is below the pick: judged by its prediction from here on
            if self.predicted(c):
                self._judge(c, settled=True)

    def time_all(self, ranked: list[Candidate]) -> None:
        """Every candidate within the size caps timed: what the goals' settling compares."""
        for c in ranked:
            if not self.budgets.size_violations(c.params, c.macs) and (self.predicted(c) or any(
                    d not in c.latency for d in self.devices)):
                self.time(c)

    def summary(self, ranked: list[Candidate]) -> dict[str, Any]:
        """What was timed and what was predicted, for the stage's metrics and its log line."""
        within = [c for c in ranked if not self.budgets.size_violations(c.params, c.macs)]
        return {"mode": "selective", "timed": sum(c.key in self.timed for c in within),
                "predicted": sum(self.predicted(c) for c in within), "candidates": len(ranked),
                "sampled": len(self.sampled),
                "fit": {h: {"samples": f.samples, "band": round(f.band, 3), "runtime": f.runtime}
                        for h, f in self.fits.items()}}
