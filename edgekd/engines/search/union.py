"""Several search spaces searched as one: a candidate is a space's name plus that space's genome.

The search's strategies only need a space's size, its genomes, keys, random genomes, mutation and
crossover; a union provides them over its members, so one run compares students of more than
one family under the same scores and budgets. Mutation moves to another member now and then
(a random genome there); crossover of parents from different members takes one parent whole.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from edgekd.engines.search.spaces import Genome, SearchSpace

SWITCH_PROB = 0.2  # a mutation that moves to another member space


class UnionSpace(SearchSpace):
    def __init__(self, members: list[SearchSpace]) -> None:  # noqa: D107 - no genes of its own
        self.members = {m.name: m for m in members}
        self.name = "+".join(self.members)
        self.genes = []

    def _split(self, genome: Genome) -> tuple[SearchSpace, Genome]:
        member = self.members[genome["space"]]
        return member, {k: v for k, v in genome.items() if k != "space"}

    @staticmethod
    def _tag(name: str, genome: Genome) -> Genome:
        return {"space": name, **genome}

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        member, g = self._split(genome)
        return member.model(g)

    def key(self, genome: Genome) -> str:
        member, g = self._split(genome)
        return f"{member.name}:{member.key(g)}"

    def size(self) -> int:
        return sum(m.size() for m in self.members.values())

    def complete(self, genome: Genome) -> Genome:
        member, g = self._split(genome)
        return self._tag(member.name, member.complete(g))

    def all_genomes(self) -> Iterator[Genome]:
        for name, m in self.members.items():
            for g in m.all_genomes():
                yield self._tag(name, g)

    def fastest_genomes(self, limit: int = 16) -> list[Genome]:
        return [self._tag(n, g) for n, m in self.members.items() for g in m.fastest_genomes(limit)][:limit]

    def random_genome(self, rng: random.Random) -> Genome:
        # weighted by size, so every architecture of the union is equally likely
        names = list(self.members)
        name = rng.choices(names, weights=[self.members[n].size() for n in names])[0]
        return self._tag(name, self.members[name].random_genome(rng))

    def mutate(self, genome: Genome, rng: random.Random, prob: float) -> Genome:
        member, g = self._split(genome)
        others = [n for n in self.members if n != member.name]
        if others and rng.random() < SWITCH_PROB:
            name = rng.choice(others)
            return self._tag(name, self.members[name].random_genome(rng))
        return self._tag(member.name, member.mutate(g, rng, prob))

    def crossover(self, a: Genome, b: Genome, rng: random.Random) -> Genome:
        if a["space"] != b["space"]:
            return dict(a if rng.random() < 0.5 else b)
        member, ga = self._split(a)
        return self._tag(member.name, member.crossover(ga, self._split(b)[1], rng))
