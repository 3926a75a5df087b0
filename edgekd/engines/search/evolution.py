"""Evolutionary search (tournament selection, uniform crossover, mutation) or enumeration.

Seeded and deterministic; every candidate is scored once (a cache by genome key).
Fitness is the combined DisWOT score; infeasible candidates are never chosen and lose
every tournament to feasible ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from edgekd.core import dist
from edgekd.core.config import SearchConfig
from edgekd.core.progress import SILENT, Reporter
from edgekd.engines.search.evaluate import Candidate
from edgekd.engines.search.scoring import DisWOTScores, Normalizer
from edgekd.engines.search.spaces import Genome, SearchSpace

Evaluate = Callable[[Genome], Candidate]
Measure = Callable[[Candidate], None]


def fitness(c: Candidate) -> tuple[int, float]:
    return (1 if c.feasible else 0, c.combined if c.combined is not None else -math.inf)


class Searcher:
    def __init__(self, space: SearchSpace, evaluate: Evaluate, cfg: SearchConfig, seed: int,
                 reporter: Reporter = SILENT, measure: Measure | None = None) -> None:
        self.space, self.evaluate, self.cfg = space, evaluate, cfg
        self.measure = measure
        self.rng = random.Random(seed)
        self.reporter = reporter
        self.cache: dict[str, Candidate] = {}
        self.normalizer: Normalizer | None = None

    @property
    def budget(self) -> int:
        return self.cfg.population * (self.cfg.generations + 1)

    def strategy(self) -> str:
        if self.cfg.strategy != "auto":
            return self.cfg.strategy
        return "exhaustive" if self.space.size() <= self.budget else "evolution"

    def _score_all(self, genomes: list[Genome], advance: Callable[..., None]) -> list[Candidate]:
        """Score (and time) the genomes not seen yet; the progress bar moves per candidate."""
        fresh: dict[str, Genome] = {}
        for g in genomes:
            k = self.space.key(g)
            if k not in self.cache:
                fresh.setdefault(k, g)
        todo = list(fresh.values())
        for g, cand in zip(todo, self._evaluated(todo, advance), strict=True):
            if self.normalizer is not None:
                cand.combined = self.normalizer.combined(_scores(cand))
            self.cache[self.space.key(g)] = cand
        return [self.cache[self.space.key(g)] for g in genomes]

    def _evaluated(self, todo: list[Genome], advance: Callable[..., None]) -> list[Candidate]:
        """One process: each candidate scored, then timed while its network is at hand. Under
        torchrun each rank scores every world-th one and all gather (merged in one process's
        order); rank 0 alone times them and broadcasts, as prune and the teacher's budget do:
        the ranks share the machine, and a candidate timed while another rank computes reads slow."""
        w = dist.world()
        if not w.active:
            out = []
            for g in todo:
                out.append(self.evaluate(g))
                if self.measure is not None:
                    self.measure(out[-1])
                advance(1, status=f"last {out[-1].key}")
            return out
        mine = [self.evaluate(g) for g in todo[w.rank :: w.size]]
        gathered = dist.all_gather(mine)
        cands = [gathered[i % w.size][i // w.size] for i in range(len(todo))]
        for c in cands:
            if self.measure is not None and w.main:
                self.measure(c)
            advance(1, status=f"last {c.key}")
        if self.measure is not None:
            timed = dist.broadcast([(c.latency, c.violations, c.seconds) for c in cands] if w.main else None)
            for c, (latency, violations, seconds) in zip(cands, timed, strict=True):
                c.latency, c.violations, c.seconds = latency, violations, seconds
        return cands

    def _fit_normalizer(self, cands: list[Candidate]) -> None:
        self.normalizer = Normalizer.fit([_scores(c) for c in cands], self.cfg.score)
        for c in self.cache.values():
            c.combined = self.normalizer.combined(_scores(c))

    def run(self) -> list[Candidate]:
        strategy = self.strategy()
        total = self.space.size() if strategy == "exhaustive" else self.budget
        with self.reporter.task(f"search ({strategy})", total=total) as advance:
            if strategy == "exhaustive":
                cands = self._score_all(list(self.space.all_genomes()), advance)
                self._fit_normalizer(cands)
            else:
                self._evolve(advance)
        return sorted(self.cache.values(), key=fitness, reverse=True)

    def _unique_random(self, n: int) -> list[Genome]:
        seen, out = set(), []
        for _ in range(n * 20):
            g = self.space.random_genome(self.rng)
            k = self.space.key(g)
            if k not in seen:
                seen.add(k)
                out.append(g)
            if len(out) == n:
                break
        return out

    def _tournament(self, population: list[Candidate]) -> Candidate:
        picks = self.rng.sample(population, min(self.cfg.tournament, len(population)))
        return max(picks, key=fitness)

    def _child(self, population: list[Candidate], pending: set[str] | None = None) -> Genome:
        for _ in range(50):  # a few tries to find an unseen genome
            a = self._tournament(population).genome
            child = dict(a)
            if self.rng.random() < self.cfg.crossover_prob:
                child = self.space.crossover(a, self._tournament(population).genome, self.rng)
            child = self.space.mutate(child, self.rng, self.cfg.mutation_prob)
            if self.space.key(child) not in self.cache and self.space.key(child) not in (pending or ()):
                return child
        return self.space.random_genome(self.rng)

    def _evolve(self, advance: Callable[..., None]) -> None:
        population = self._score_all(self._unique_random(self.cfg.population), advance)
        self._fit_normalizer(population)
        for _ in range(self.cfg.generations):
            pending: set[str] = set()
            kids = []
            for _ in range(self.cfg.population):  # drawn as before: unseen by the cache or this generation
                kids.append(self._child(population, pending))
                pending.add(self.space.key(kids[-1]))
            children = self._score_all(kids, advance)
            pool = {c.key: c for c in population + children}
            population = sorted(pool.values(), key=fitness, reverse=True)[: self.cfg.population]


def _scores(c: Candidate) -> DisWOTScores:
    return DisWOTScores(c.semantic_distance, c.relation_distance)
