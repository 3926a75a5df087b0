"""DisWOT scores: how similar a randomly initialised student is to the randomly initialised
teacher, on one fixed mini-batch, without training either.

Which reading of the paper (DisWOT, Dong et al., CVPR 2023) this implements; the
reference repo (``lliai/DisWOT-CVPR2023``) disagrees with its own README in places, so
each choice is stated:

* **Relation similarity** (paper's M_r; SP-KD's matrix). Features of the last stage
  *before* global pooling, flattened per sample, Q ∈ R^{B×CHW}; Gram G = Q Qᵀ with each
  row L2-normalised; M_r = ‖G_T − G_S‖²_F / B². Score component: −M_r.
* **Semantic similarity** (paper's M_s). One cross-entropy backward pass through each
  network; the "Grad-CAM of the fc layer" of the README is the gradient of the classifier
  weights, g ∈ R^{K×C} (for a GAP + linear head, row k is the error-weighted mean pooled
  feature of class k). We compare the *inter-class* correlation A = norm_rows(g gᵀ) ∈ R^{K×K}
  (ICKD-style but over classes, so teacher and student widths may differ; the repo's
  C×C form needs equal widths): M_s = ‖A_T − A_S‖²_F / K². Score component: −M_s.
  Not the classifier *weights* (a repo search script does that, which ignores the data),
  not the BatchNorm-variance score a repo file registers as "diswot".
* **Combination** (not stated in the README): each distance is divided by a fixed scale,
  its median over a reference population (the first generation, or the whole space when
  enumerated), and the two are summed: score = −(M_s/s_s + M_r/s_r). Without it the
  larger-scale term decides alone. Both components are always reported separately.
* Both networks are scored **at random initialisation** (the paper's setting; a study here
  found the trained teacher ranked students no better than chance). BatchNorm uses batch
  statistics (train mode), dropout is off, so the scores are deterministic for a seed and
  invariant to the order of the batch (mean gradients, permuted Gram matrices).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from torch import nn

from edgekd.engines.models.build import classifier_names
from edgekd.engines.models.features import FeatureTap, default_feature_layer
from edgekd.engines.train.similarity import class_correlation, matrix_distance, relation_matrix


@dataclass(frozen=True)
class Signature:
    """What DisWOT compares of one network on the fixed batch."""

    relation: torch.Tensor  # [B, B] row-normalised Gram of the pre-pool features
    semantic: torch.Tensor  # [K, K] row-normalised inter-class correlation of the classifier gradient


@dataclass
class DisWOTScores:
    semantic_distance: float  # M_s (lower = more similar)
    relation_distance: float  # M_r

    def components(self) -> dict[str, float]:
        return {"semantic": -self.semantic_distance, "relation": -self.relation_distance}


def _prepare(model: nn.Module) -> nn.Module:
    model.train()  # BatchNorm on batch statistics, as at the start of training
    for m in model.modules():
        if isinstance(m, nn.Dropout | nn.Dropout2d):
            m.eval()
    return model


def signature(model: nn.Module, x: torch.Tensor, y: torch.Tensor, feature_layer: str | None = None) -> Signature:
    """One forward and one cross-entropy backward pass; returns the two matrices."""
    model = _prepare(model)
    layer = feature_layer or default_feature_layer(model, x.shape[-1])
    clf_name = classifier_names(model)
    if not clf_name:
        raise ValueError("DisWOT needs a final linear classifier (none found)")
    classifier = dict(model.named_modules())[clf_name[0]]
    model.zero_grad(set_to_none=True)
    with FeatureTap(model, layer) as tap:
        logits = model(x)
        feats = tap.value
    assert feats is not None
    loss = nn.functional.cross_entropy(logits, y)
    grad = torch.autograd.grad(loss, classifier.weight)[0]  # [K, C] (or [K, C, 1, 1] for a conv head)
    return Signature(relation_matrix(feats.detach()), class_correlation(grad.reshape(grad.shape[0], -1)))


def compare(teacher: Signature, student: Signature) -> DisWOTScores:
    return DisWOTScores(
        semantic_distance=float(matrix_distance(student.semantic, teacher.semantic)),
        relation_distance=float(matrix_distance(student.relation, teacher.relation)),
    )


@dataclass
class Normalizer:
    """Fixed scales for combining the two distances (see the module docstring)."""

    semantic_scale: float = 1.0
    relation_scale: float = 1.0
    use: str = "diswot"  # diswot (both terms) | semantic | relation

    @classmethod
    def fit(cls, scores: list[DisWOTScores], use: str = "diswot") -> Normalizer:
        def scale(vals: list[float]) -> float:
            m = statistics.median(vals) if vals else 1.0
            return m if m > 1e-12 else 1.0

        return cls(scale([s.semantic_distance for s in scores]), scale([s.relation_distance for s in scores]), use)

    def combined(self, s: DisWOTScores) -> float:
        sem = s.semantic_distance / self.semantic_scale if self.use != "relation" else 0.0
        rel = s.relation_distance / self.relation_scale if self.use != "semantic" else 0.0
        return -(sem + rel)
