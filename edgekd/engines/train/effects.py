"""What distillation changed beyond top-1: calibration and per-class accuracy.

Two students with the same top-1 can differ in what they get right and in how far their
confidence can be trusted. Stanton et al. (NeurIPS 2021, "Does knowledge distillation really
work?") and Guo et al. (ICML 2017, "On calibration of modern neural networks") are the
usual references; ECE here is Guo et al.'s: 15 equal-width bins of the top softmax
probability over (0, 1], weighted |accuracy − mean confidence| per bin.
"""

from __future__ import annotations

from typing import Any

import torch

ECE_BINS = 15
TOP_CLASSES = 5  # gains and losses listed per comparison


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """ECE as a fraction (0: confidence matches accuracy in every bin)."""
    probs = torch.softmax(logits.float(), dim=1)
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.float().mean() * (conf[inside].mean() - correct[inside].mean()).abs()
    return float(ece)


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Top-1 accuracy in percent per class (None for a class without validation images)."""
    pred = logits.argmax(1)
    out: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        out.append(round(float((pred[mask] == c).float().mean() * 100), 3) if mask.any() else None)
    return out


def class_changes(new: list[float | None], old: list[float | None], names: list[str],
                  support: list[int], top: int = TOP_CLASSES) -> dict[str, Any]:
    """The classes ``new`` gains most on and loses most on against ``old`` (points, per class)."""
    deltas = [(names[i], round(a - b, 3), support[i]) for i, (a, b) in enumerate(zip(new, old, strict=True))
              if a is not None and b is not None]
    rows = [{"class": n, "points": d, "images": s} for n, d, s in deltas]
    # ties: the class with more images first (the same points on more images is a firmer change)
    gains = sorted((r for r in rows if r["points"] > 0), key=lambda r: (-r["points"], -r["images"]))[:top]
    losses = sorted((r for r in rows if r["points"] < 0), key=lambda r: (r["points"], -r["images"]))[:top]
    return {"gains": gains, "losses": losses, "unchanged": sum(1 for r in rows if r["points"] == 0)}


def distillation_effects(logits: dict[str, torch.Tensor], labels: torch.Tensor,
                         class_names: list[str]) -> dict[str, Any]:
    """ECE and per-class accuracy of each model (``teacher``, ``student``, ``baseline``; any
    subset), and the student's per-class changes against the baseline and the teacher."""
    labels = labels.cpu()
    k = len(class_names)
    support = [int((labels == c).sum()) for c in range(k)]
    per_class = {name: per_class_accuracy(lg.cpu(), labels, k) for name, lg in logits.items()}
    out: dict[str, Any] = {
        "samples": int(labels.shape[0]), "ece_bins": ECE_BINS,
        "ece": {name: round(expected_calibration_error(lg.cpu(), labels), 5) for name, lg in logits.items()},
        "accuracy": {name: round(float((lg.cpu().argmax(1) == labels).float().mean() * 100), 3)
                     for name, lg in logits.items()},
        "per_class": {"classes": list(class_names), "images": support, **per_class},
        "changes": {},
    }
    if "student" in per_class:
        for other in ("baseline", "teacher"):
            if other in per_class:
                out["changes"][f"student_vs_{other}"] = class_changes(per_class["student"], per_class[other],
                                                                      class_names, support)
    return out
