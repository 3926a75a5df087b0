"""The distillation loss registry: each training loss is a weighted sum of these terms.

Each term is an ``nn.Module`` taking a :class:`LossInputs`; it declares whether it needs
the teacher and the feature maps, so the trainer runs only what is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from edgekd.core.registries import LOSSES
from edgekd.engines.train.similarity import class_correlation, matrix_distance, relation_matrix


@dataclass
class LossInputs:
    student_logits: torch.Tensor
    targets: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    student_features: torch.Tensor | None = None
    teacher_features: torch.Tensor | None = None
    student_stages: list[torch.Tensor] | None = None  # several stage outputs, for terms with needs_stage_features


class LossTermModule(nn.Module):
    needs_teacher: ClassVar[bool] = False
    needs_features: ClassVar[bool] = False
    # the student's stage outputs (engines/models/features.py stage_layers); such a term has
    # ``stage_count`` and ``build(stages, num_classes)`` to create its trainable parts
    needs_stage_features: ClassVar[bool] = False

    def forward(self, inp: LossInputs) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class CEParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label_smoothing: float = Field(0.0, ge=0, lt=1)


@LOSSES.register("ce", params=CEParams, help="cross-entropy with the labels (no teacher)")
class CrossEntropy(LossTermModule):
    def __init__(self, p: CEParams) -> None:
        super().__init__()
        self.smoothing = p.label_smoothing

    def forward(self, inp: LossInputs) -> torch.Tensor:
        return F.cross_entropy(inp.student_logits.float(), inp.targets, label_smoothing=self.smoothing)


class KLParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the soft targets; 1-alpha on labels")


@LOSSES.register("kl", params=KLParams, help="Hinton KD: alpha·T²·KL(teacher‖student) + (1-alpha)·CE")
class HintonKL(LossTermModule):
    """Hinton, Vinyals & Dean 2015. T² keeps the soft-target gradients on the CE scale."""

    needs_teacher = True

    def __init__(self, p: KLParams) -> None:
        super().__init__()
        self.t, self.alpha = p.temperature, p.alpha

    def forward(self, inp: LossInputs) -> torch.Tensor:
        assert inp.teacher_logits is not None
        t = self.t
        soft = F.kl_div(
            F.log_softmax(inp.student_logits.float() / t, dim=1),
            F.log_softmax(inp.teacher_logits.float() / t, dim=1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)
        if self.alpha >= 1.0:
            return soft
        hard = F.cross_entropy(inp.student_logits.float(), inp.targets)
        return self.alpha * soft + (1.0 - self.alpha) * hard


class RelationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gamma: float = Field(3000.0, gt=0, description="SP's scale: the normalised distances are tiny")


@LOSSES.register("relation", params=RelationParams, help="similarity-preserving KD on the last feature map")
class SimilarityPreserving(LossTermModule):
    """Tung & Mori 2019: match the row-normalised B×B Gram matrices of the feature maps."""

    needs_teacher = True
    needs_features = True

    def __init__(self, p: RelationParams) -> None:
        super().__init__()
        self.gamma = p.gamma

    def forward(self, inp: LossInputs) -> torch.Tensor:
        assert inp.student_features is not None and inp.teacher_features is not None
        gs = relation_matrix(inp.student_features)
        gt = relation_matrix(inp.teacher_features.detach())
        return self.gamma * matrix_distance(gs, gt)


class AttentionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p: float = Field(2.0, gt=0)
    beta: float = Field(1000.0, gt=0, description="AT's scale")


@LOSSES.register("attention", params=AttentionParams, help="attention transfer on the last feature map")
class AttentionTransfer(LossTermModule):
    """Zagoruyko & Komodakis 2017: compare normalised spatial maps mean_c |F|^p.

    Channel counts may differ; spatial sizes are matched by bilinear resizing.
    """

    needs_teacher = True
    needs_features = True

    def __init__(self, p: AttentionParams) -> None:
        super().__init__()
        self.p, self.beta = p.p, p.beta

    def _map(self, f: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        a = f.float().abs().pow(self.p).mean(dim=1, keepdim=True)
        if a.shape[-2:] != size:
            a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        return F.normalize(a.flatten(1), dim=1)

    def forward(self, inp: LossInputs) -> torch.Tensor:
        assert inp.student_features is not None and inp.teacher_features is not None
        size = tuple(inp.student_features.shape[-2:])
        a_s = self._map(inp.student_features, size)
        a_t = self._map(inp.teacher_features.detach(), size)
        return self.beta / 2 * (a_s - a_t).pow(2).mean()


class DisWOTLossParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    semantic_weight: float = Field(1.0, ge=0)
    relation_weight: float = Field(1.0, ge=0)
    semantic_scale: float = Field(100.0, gt=0, description="brings the K×K distance to the CE scale")
    relation_scale: float = Field(3000.0, gt=0, description="SP's gamma for the B×B distance")


@LOSSES.register("diswot", params=DisWOTLossParams, help="DisWOT's semantic + relation similarities as a distiller")
class DisWOTDistiller(LossTermModule):
    """DisWOT's two similarities, used as a training loss (the paper's "DisWOT as distiller").

    Relation: the same row-normalised B×B Gram matrices the search compares (SP-KD).
    Semantic: the search compares inter-class correlations of class evidence; in training
    the differentiable class evidence is the logits, i.e. the globally pooled class
    activation maps (for a GAP + linear head, logit_k = mean over positions of CAM_k + b_k),
    so we match A = norm_rows(zᵀz) ∈ R^{K×K} over the batch (ICKD's inter-channel form,
    over classes). The paper's exact weights are not public; the scales here put both
    terms on the cross-entropy scale at initialisation. Add ``kl`` beside it for the
    soft targets.
    """

    needs_teacher = True
    needs_features = True

    def __init__(self, p: DisWOTLossParams) -> None:
        super().__init__()
        self.p = p

    def forward(self, inp: LossInputs) -> torch.Tensor:
        assert inp.teacher_logits is not None and inp.student_features is not None
        assert inp.teacher_features is not None
        p = self.p
        rel = matrix_distance(relation_matrix(inp.student_features), relation_matrix(inp.teacher_features.detach()))
        sem = matrix_distance(class_correlation(inp.student_logits.float().t()),
                              class_correlation(inp.teacher_logits.float().detach().t()))
        return p.semantic_weight * p.semantic_scale * sem + p.relation_weight * p.relation_scale * rel


def build_loss_terms(terms: list) -> list[tuple[float, LossTermModule]]:
    """(weight, module) pairs for the configured ``loss:`` list."""
    return [(t.weight, LOSSES.get(t.name)(t.params)) for t in terms]
