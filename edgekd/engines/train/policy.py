"""Training policy a later stage applies from what an earlier one found."""

from __future__ import annotations

from edgekd.core.config import LossTerm, TrainConfig

ALPHA_AFTER_PLAIN_WON = 0.5  # the labels weigh as much as the teacher


def kd_adapted(shipped: str | None, train: TrainConfig) -> tuple[TrainConfig, str | None]:
    """A later fine-tune (prune, QAT) after distill shipped the student trained without the
    teacher: KD did not pay there (the student outgrew its teacher), so a default KD loss gets
    α 0.5 instead of 0.9. A loss the user wrote is kept. ``shipped``: what distill shipped
    (``kd`` or ``plain``; None without a distill stage). Returns the config and what changed.

    Why 0.5 and not labels alone: the stages still distil (the soft targets help QAT recover
    from rounding), but the teacher no longer dominates a student better than itself; a
    fine-tune from a student that beat its teacher recovers more with the labels weighing as
    much as the teacher than with the teacher at 0.9 (benchmarks/RESULTS.md, "Does each stage pay?")."""
    heavy = [t.name == "kl" and t.params.alpha > ALPHA_AFTER_PLAIN_WON for t in train.loss]  # terms to lighten
    if shipped != "plain" or "loss" in train.model_fields_set \
            or not any(heavy):
        return train, None
    loss = [LossTerm(name=t.name, weight=t.weight, **{**t.params.model_dump(), "alpha": ALPHA_AFTER_PLAIN_WON})
            if h else t for t, h in zip(train.loss, heavy, strict=True)]
    was = next(t.params.alpha for t, h in zip(train.loss, heavy, strict=True) if h)
    why = (f"KD did not pay in distill (the student trained without the teacher shipped): the KD weight α is "
           f"{ALPHA_AFTER_PLAIN_WON} instead of {was} (set the loss to keep it)")
    return train.model_copy(update={"loss": loss}), why
