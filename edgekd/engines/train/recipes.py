"""Training recipes by model family: the settings a family needs to train at all, applied where
the config leaves them open.

Why: the trainer's defaults (SGD with momentum, lr 0.05, no warm-up) are a ResNet's recipe. A
vision transformer trained with them stays near chance (digits: 10–14% after 5 epochs), and so
do ConvNeXt and hybrids, which were designed with AdamW, a warm-up, label smoothing and tight
gradient clipping (DeiT, ConvNeXt and Swin all train that way). The family comes from the
network's blocks (engines/models/families.py); ``recipe:`` in any training section names one
instead (``sgd`` keeps the config exactly as written).

What ``adamw`` changes, each only where the config does not set it:

* the optimizer, unless ``optimizer.name`` is written: AdamW with the section's learning rate
  times ``LR_SCALE``. The stages' rates are written for SGD (distill 0.05, prune fine-tune
  0.01, QAT 5e-4), and their ratios still hold: AdamW gets 1e-3, 2e-4 and 1e-5. Weight decay
  0.05 (decoupled) unless written;
* a linear warm-up over a tenth of the epochs (at most 5);
* gradient clipping at norm 1.0;
* label smoothing 0.1 on a cross-entropy term, when ``loss`` is not written.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgekd.core.config import TrainConfig
from edgekd.core.config_train import LossTerm
from edgekd.engines.models.families import default_recipe

LR_SCALE = 0.02  # AdamW lr over the SGD lr a section states (0.05 → 1e-3)
WEIGHT_DECAY = 0.05
WARMUP_FRACTION, WARMUP_MAX = 0.1, 5.0
GRAD_CLIP = 1.0
LABEL_SMOOTHING = 0.1


def fitted(cfg: TrainConfig, model: nn.Module) -> tuple[TrainConfig, dict[str, Any]]:
    """``cfg`` with the recipe of ``model``'s family (or of ``cfg.recipe``) filled in, and a record of
    what was chosen and changed (for the report: which settings the run really trained with)."""
    name, family = default_recipe(model) if cfg.recipe == "auto" else (cfg.recipe, None)
    record: dict[str, Any] = {"name": name, **({"family": family} if family else {}), "changed": {}}
    if name == "sgd":
        return cfg, record
    changed: dict[str, Any] = {}
    update: dict[str, Any] = {}
    opt = cfg.optimizer
    if "name" not in opt.model_fields_set and opt.name != "adamw":
        wd = opt.weight_decay if "weight_decay" in opt.model_fields_set else WEIGHT_DECAY
        update["optimizer"] = opt.model_copy(update={"name": "adamw", "lr": opt.lr * LR_SCALE, "weight_decay": wd})
        changed |= {"optimizer": "adamw", "lr": round(opt.lr * LR_SCALE, 8), "weight_decay": wd}
    sched = cfg.schedule
    if "warmup_epochs" not in sched.model_fields_set:
        warm = round(min(WARMUP_MAX, WARMUP_FRACTION * cfg.epochs), 3)
        update["schedule"] = sched.model_copy(update={"warmup_epochs": warm})
        changed["warmup_epochs"] = warm
    if "grad_clip" not in cfg.model_fields_set:
        update["grad_clip"] = GRAD_CLIP
        changed["grad_clip"] = GRAD_CLIP
    if "loss" not in cfg.model_fields_set and any(t.name == "ce" for t in cfg.loss):
        update["loss"] = [_smoothed(t) for t in cfg.loss]
        changed["label_smoothing"] = LABEL_SMOOTHING
    record["changed"] = changed
    return cfg.model_copy(update=update), record


def _smoothed(term: LossTerm) -> LossTerm:
    if term.name != "ce" or term.params.label_smoothing > 0:
        return term
    return LossTerm(name="ce", weight=term.weight, label_smoothing=LABEL_SMOOTHING)


def describe(record: dict[str, Any]) -> str:
    """One line for the log: ``adamw recipe (vision transformer): AdamW lr 0.001, warm-up 1.5 epochs, ...``."""
    c = record.get("changed", {})
    parts = ([f"AdamW lr {c['lr']:g} wd {c['weight_decay']:g}"] if "optimizer" in c else []) + \
        ([f"warm-up {c['warmup_epochs']:g} epochs"] if "warmup_epochs" in c else []) + \
        ([f"grad clip {c['grad_clip']:g}"] if "grad_clip" in c else []) + \
        ([f"label smoothing {c['label_smoothing']:g}"] if "label_smoothing" in c else [])
    fam = f" ({record['family']})" if record.get("family") else ""
    return f"{record['name']} recipe{fam}" + (": " + ", ".join(parts) if parts else "")
