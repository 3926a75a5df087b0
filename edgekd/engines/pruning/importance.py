"""Pruning importance criteria (registry), each a torch-pruning importance object.

``taylor`` is first-order Taylor (|w · ∂L/∂w| per group); its gradients come from the
distillation loss on a few batches, so it ranks channels by what matters to matching
the teacher, not only to the labels.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from edgekd.core.registries import IMPORTANCES


class Criterion:
    needs_gradients: ClassVar[bool] = False

    def build(self) -> Any:
        raise NotImplementedError


class MagnitudeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p: int = Field(2, ge=1, le=2, description="L1 or L2 norm of each channel group")


@IMPORTANCES.register("magnitude", params=MagnitudeParams, help="L2 (or L1) norm of each coupled channel group")
class Magnitude(Criterion):
    def __init__(self, params: MagnitudeParams) -> None:
        self.p = params.p

    def build(self) -> Any:
        import torch_pruning as tp

        return tp.importance.GroupMagnitudeImportance(p=self.p)


class TaylorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batches: int = Field(8, ge=1, description="batches of distillation-loss gradients to accumulate")


@IMPORTANCES.register("taylor", params=TaylorParams, help="first-order Taylor, gradients of the distillation loss")
class Taylor(Criterion):
    needs_gradients = True

    def __init__(self, params: TaylorParams) -> None:
        self.batches = params.batches

    def build(self) -> Any:
        import torch_pruning as tp

        return tp.importance.GroupTaylorImportance()


class RandomParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@IMPORTANCES.register("random", params=RandomParams, help="random channels (a baseline for the others)")
class RandomCriterion(Criterion):
    def __init__(self, params: RandomParams) -> None:
        pass

    def build(self) -> Any:
        import torch_pruning as tp

        return tp.importance.RandomImportance()
