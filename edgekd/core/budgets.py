"""The run's latency budgets: one typed object per run, read by every stage.

A budget on a target is either a *wall* (a number the user wrote: ``speedup``, ``latency_ms``;
an unreachable wall stops the run) or a *goal* (a default: where the target cannot reach
it, the run takes the best the target reaches and says so). ``ms`` is the limit in force;
``asked_ms`` keeps what was asked when a goal was lowered, and ``why`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from edgekd.core.estimates import LatencyEstimate, renamed
from edgekd.core.formats import HOST_RUNTIMES

OUT_OF_REACH = ", out of reach, goal: "


@dataclass
class Reach:
    """The fastest a target reaches from this teacher and search space, probed before training."""

    fastest_ms: float | None = None  # the fastest probed candidate of the search space
    fastest: str | None = None  # that candidate's key
    pruned_teacher_ms: float | None = None  # the teacher pruned as far as torch-pruning goes
    kind: str = "predicted"  # measured | predicted
    pruned_shallow_ms: float | None = None  # the same with every droppable residual block removed too

    @property
    def best_ms(self) -> float | None:
        found = [x for x in (self.fastest_ms, self.pruned_teacher_ms, self.pruned_shallow_ms) if x is not None]
        return min(found) if found else None


@dataclass
class TargetBudget:
    """The latency limit on one target, where it comes from, and what the target can reach."""

    target: str
    ms: float | None
    basis: str  # human-readable: "teacher 1.23 ms (measured, openvino fp32) / 4"
    speedup: float | None = None  # k, when the budget is relative
    teacher: dict[str, Any] | None = None  # the teacher's LatencyEstimate on this target
    wall: bool = False  # the user wrote it: a hard constraint
    asked_ms: float | None = None  # what was asked, when the limit in force differs (a goal lowered)
    reach: Reach | None = None
    why: str | None = None  # why the limit in force is not the one asked

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The host runtime the teacher was fastest in (all of them when unknown)."""
        name = (self.teacher or {}).get("runtime", "").split(" ")[0]
        return (name,) if name in HOST_RUNTIMES else HOST_RUNTIMES

    @property
    def asked(self) -> float | None:
        return self.asked_ms if self.asked_ms is not None else self.ms

    @property
    def lowered(self) -> bool:
        """A goal the target could not reach, replaced by what it reaches."""
        return self.asked_ms is not None and self.ms is not None and self.ms > self.asked_ms

    def speedup_at(self, ms: float | None) -> float | None:
        """The teacher's latency here over ``ms``: the speed-up a file of ``ms`` gives."""
        t = (self.teacher or {}).get("ms")
        return round(t / ms, 3) if t and ms else None

    def lowered_to(self, ms: float, why: str) -> TargetBudget:
        """This goal lowered to ``ms`` (a wall never is: the caller decides)."""
        asked = self.asked
        k = self.speedup_at(ms)
        basis = f"{self.basis.split(OUT_OF_REACH)[0]}{OUT_OF_REACH}{ms:.3g} ms" + (f" ({k:.2f}×)" if k else "")
        return TargetBudget(self.target, round(ms, 6), basis, self.speedup, self.teacher, self.wall, asked,
                            self.reach, why)

    def kept_speedup(self) -> float | None:
        """The k this limit keeps when the teacher is read again: the k asked, or, for a goal
        lowered to what the target reaches, that reachable k. None for an absolute limit."""
        reached = self.speedup_at(self.ms) if self.speedup and self.lowered else None
        return reached or self.speedup

    def on_teacher(self, teacher_ms: float, basis: str) -> TargetBudget:
        """This relative budget over the teacher read again beside the files it judges (the bench's
        timing): the same k, the limit moved with the teacher. Absolute limits do not move."""
        k = self.kept_speedup()
        return replace(self, ms=round(teacher_ms / k, 6), basis=basis) if k else self

    def summary(self) -> dict[str, Any]:
        """What the report states per target: asked, reachable, why (``targets[].budget``)."""
        r = self.reach
        return {"asked_ms": self.asked, "asked_speedup": self.speedup, "limit_ms": self.ms,
                "speedup": self.speedup_at(self.ms), "wall": self.wall, "lowered": self.lowered,
                "reachable_ms": r.best_ms if r else None, "reachable_speedup": self.speedup_at(r.best_ms) if r else None,
                "reach_kind": r.kind if r else None, "why": self.why}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetBudget:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("reach"), dict):
            d["reach"] = Reach(**d["reach"])
        return cls(**d)


@dataclass
class RunBudgets:
    """Every target's budget, and the teacher's latency there (what relative budgets divide)."""

    targets: dict[str, TargetBudget] = field(default_factory=dict)
    teacher: dict[str, LatencyEstimate] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was decided, in words (terminal and report)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)  # candidate key -> target -> estimate
    prune: dict[str, TargetBudget] = field(default_factory=dict)  # prune.speedup's limits, when it is set

    def limits(self) -> dict[str, float]:
        """The limit in force per target, for targets that have one."""
        return {n: b.ms for n, b in self.targets.items() if b.ms is not None}

    def __getitem__(self, name: str) -> TargetBudget:
        return self.targets[name]

    def items(self):
        return self.targets.items()

    def as_dict(self) -> dict[str, Any]:
        return {"targets": {n: b.as_dict() for n, b in self.targets.items()},
                "teacher": {n: asdict(e) for n, e in self.teacher.items()}, "notes": list(self.notes),
                "probes": self.probes, "prune": {n: b.as_dict() for n, b in self.prune.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunBudgets:
        d = renamed(d)
        return cls({n: TargetBudget.from_dict(b) for n, b in d.get("targets", {}).items()},
                   {n: LatencyEstimate(**e) for n, e in d.get("teacher", {}).items()}, list(d.get("notes", [])),
                   dict(d.get("probes", {})), {n: TargetBudget.from_dict(b) for n, b in d.get("prune", {}).items()})

    def with_targets(self, targets: dict[str, TargetBudget], notes: list[str]) -> RunBudgets:
        return RunBudgets({**self.targets, **targets}, dict(self.teacher), [*self.notes, *notes], dict(self.probes),
                          dict(self.prune))
