"""Racing the student sources: successive halving over training runs of one budget.

Distill trains several students where one ships (the searched student and the teacher pruned
to the budget, each with and without the teacher). Most of them are clearly behind early, so
they need not finish (successive halving, as in Hyperband/ASHA): at a few rungs (fractions of
the epochs) a run whose best validation accuracy so far is behind the leader's at the same
epoch by more than ``margin`` points stops; the others go on. Runs are trained one after the
other, so each is judged against the curves of those trained before it (ASHA's asynchronous
promotion). Every curve is kept, and where a run stopped and why is recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Race:
    epochs: int
    at: tuple[float, ...]  # fractions of the epochs where runs are judged
    margin: float  # points behind the leader at a rung that stop a run
    curves: dict[str, list[float]] = field(default_factory=dict)  # run -> validation accuracy per epoch
    stopped: dict[str, dict[str, Any]] = field(default_factory=dict)  # run -> where it stopped and why

    @property
    def rungs(self) -> list[int]:
        """The epochs where runs are judged (never the last: a run there has finished)."""
        return sorted({e for f in self.at if 1 <= (e := math.ceil(f * self.epochs)) < self.epochs})

    def leader(self, epoch: int, other_than: str) -> tuple[str, float] | None:
        """The run with the best accuracy up to ``epoch`` among the others that reached it."""
        reached = {n: max(c[:epoch]) for n, c in self.curves.items() if n != other_than and len(c) >= epoch}
        if not reached:
            return None
        name = max(reached, key=lambda n: reached[n])
        return name, reached[name]

    def judge(self, run: str, epoch: int, accuracy: float) -> str | None:
        """Record ``run``'s accuracy at ``epoch``; at a rung, why it stops (None: it goes on)."""
        curve = self.curves.setdefault(run, [])
        del curve[epoch - 1:]
        curve.append(accuracy)
        if epoch not in self.rungs:
            return None
        lead = self.leader(epoch, run)
        if lead is None:
            return None
        own = max(curve)
        if lead[1] - own <= self.margin:
            return None
        why = (f"stopped at epoch {epoch}/{self.epochs}: {own:.2f}% against {lead[0]}'s {lead[1]:.2f}% at the same "
               f"epoch, more than {self.margin:g} points behind")
        self.stopped[run] = {"epoch": epoch, "accuracy": round(own, 3), "leader": lead[0],
                             "leader_accuracy": round(lead[1], 3), "why": why}
        return why

    def for_run(self, run: str):  # noqa: ANN201 - the trainer's stop hook
        """The trainer's per-epoch hook for ``run``: ``hook(epoch, accuracy) -> why | None``."""
        return lambda epoch, accuracy: self.judge(run, epoch, accuracy)

    def record(self) -> dict[str, Any]:
        """What the report keeps: the rule, every curve, and where each run stopped."""
        return {"at": list(self.at), "rungs": self.rungs, "margin": self.margin,
                "curves": {n: [round(a, 3) for a in c] for n, c in self.curves.items()},
                "stopped": dict(self.stopped)}
