"""The run's latency budgets: resolved once from the config (before training), settled by the
search when targets pull apart, rebased by the bench; every stage reads the one object."""

from edgekd.core.budgets import Reach, RunBudgets, TargetBudget
from edgekd.engines.budgets.resolve import DEFAULT_SPEEDUP, relative_budgets, resolve_budgets, speedup_for

__all__ = ["DEFAULT_SPEEDUP", "Reach", "RunBudgets", "TargetBudget", "relative_budgets", "resolve_budgets",
           "speedup_for"]
