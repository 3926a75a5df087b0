"""Evolutionary search (tournament selection, uniform crossover, mutation) or enumeration.

Seeded and deterministic; every candidate is scored once (a cache by genome key).
Fitness is the combined DisWOT score; infeasible candidates are never chosen and lose
every tournament to feasible ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from edgekd.core.config import SearchConfig
from edgekd.core.progress import SILENT, Reporter
from edgekd.search_spaces.spaces import Genome, SearchSpace
from edgekd.stages.search.evaluate import Candidate
from edgekd.stages.search.scoring import DisWOTScores, Normalizer

Evaluate = Callable[[Genome], Candidate]


def fitness(c: Candidate) -> tuple[int, float]:
    return (1 if c.feasible else 0, c.combined if c.combined is not None else -math.inf)


class Searcher:
    def __init__(self, space: SearchSpace, evaluate: Evaluate, cfg: SearchConfig, seed: int,
                 reporter: Reporter = SILENT) -> None:
        self.space, self.evaluate, self.cfg = space, evaluate, cfg
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

    def _score(self, genome: Genome, advance: Callable[..., None]) -> Candidate:
        key = self.space.key(genome)
        if key not in self.cache:
            cand = self.evaluate(genome)
            if self.normalizer is not None:
                cand.combined = self.normalizer.combined(_scores(cand))
            self.cache[key] = cand
            best = max(self.cache.values(), key=fitness)
            advance(1, status=f"best {best.key}")
        return self.cache[key]

    def _fit_normalizer(self, cands: list[Candidate]) -> None:
        self.normalizer = Normalizer.fit([_scores(c) for c in cands], self.cfg.score)
        for c in self.cache.values():
            c.combined = self.normalizer.combined(_scores(c))

    def run(self) -> list[Candidate]:
        strategy = self.strategy()
        total = self.space.size() if strategy == "exhaustive" else self.budget
        with self.reporter.task(f"search ({strategy})", total=total) as advance:
            if strategy == "exhaustive":
                cands = [self._score(g, advance) for g in self.space.all_genomes()]
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

    def _child(self, population: list[Candidate]) -> Genome:
        for _ in range(50):  # a few tries to find an unseen genome
            a = self._tournament(population).genome
            child = dict(a)
            if self.rng.random() < self.cfg.crossover_prob:
                child = self.space.crossover(a, self._tournament(population).genome, self.rng)
            child = self.space.mutate(child, self.rng, self.cfg.mutation_prob)
            if self.space.key(child) not in self.cache:
                return child
        return self.space.random_genome(self.rng)

    def _evolve(self, advance: Callable[..., None]) -> None:
        population = [self._score(g, advance) for g in self._unique_random(self.cfg.population)]
        self._fit_normalizer(population)
        for _ in range(self.cfg.generations):
            children = [self._score(self._child(population), advance) for _ in range(self.cfg.population)]
            pool = {c.key: c for c in population + children}
            population = sorted(pool.values(), key=fitness, reverse=True)[: self.cfg.population]


def _scores(c: Candidate) -> DisWOTScores:
    return DisWOTScores(c.semantic_distance, c.relation_distance)
