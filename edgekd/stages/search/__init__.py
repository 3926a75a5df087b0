"""Training-free student search (DisWOT, CVPR 2023) under a target's budgets."""

from edgekd.stages.search.stage import SearchStage

__all__ = ["SearchStage"]
