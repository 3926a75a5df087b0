"""Similarity matrices shared by the DisWOT search scores and the distillation losses.

Teacher and student have different channel counts, so they are never compared feature
by feature: each is reduced to a matrix whose size depends only on the batch (B×B
sample relations) or the classes (K×K class correlations), and those are compared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relation_matrix(features: torch.Tensor) -> torch.Tensor:
    """Row-L2-normalised batch Gram matrix ``G = f fᵀ`` of flattened features [B, ...] → [B, B].

    This is similarity-preserving KD's matrix (Tung & Mori 2019) and DisWOT's relation
    similarity input (features before global pooling, flattened per sample).
    """
    f = features.reshape(features.shape[0], -1).float()
    return F.normalize(f @ f.t(), p=2, dim=1)


def class_correlation(m: torch.Tensor) -> torch.Tensor:
    """Row-L2-normalised inter-class correlation ``A = m mᵀ`` of a [K, ·] matrix → [K, K].

    ICKD-style, but over classes instead of channels so that teacher and student (with
    different widths) give matrices of the same size.
    """
    m = m.reshape(m.shape[0], -1).float()
    return F.normalize(m @ m.t(), p=2, dim=1)


def matrix_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance divided by the number of entries: ``‖a − b‖²_F / n²``."""
    return (a - b).pow(2).sum() / a.numel()
