"""Distill: the student trained from the teacher (and, when it pays, the teacher pruned)."""

from edgekd.stages.distill.stage import DistillStage, student_ref

__all__ = ["DistillStage", "student_ref"]
