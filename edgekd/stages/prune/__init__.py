"""Prune: remove whole channels to a MACs, parameter, latency or speed-up target, step by
step, keeping only the steps that made the model faster on the targets."""

from edgekd.stages.prune.stage import PruneStage

__all__ = ["PruneStage"]
