"""Model families: what differs per family lives in this one table, not in branches across stages.

A family is recognised by the building blocks the network is made of (timm's and torchvision's
block classes), not by its name: a user's entry point or a timm variant with another name is
read the same way. The table decides two things:

* the default **search space(s)** for a teacher of the family. An inverted-residual teacher
  (MobileNet, EfficientNet) is already efficient, so ResNet students are rarely faster than it:
  it gets inverted-residual students. A transformer teacher gets small ViTs *and* ResNets,
  searched as one space: which is faster at the budget depends on the target (attention is
  cheap on a CPU at 32 px, launch-bound on a GPU at batch 1).
* the default **training recipe**: plain SGD with momentum trains ResNets and MobileNets; a
  transformer or ConvNeXt trained with it stays near chance (a ViT on digits: 10–14% after 5
  epochs at SGD lr 0.05). Those get AdamW, warm-up, label smoothing and tighter clipping
  (engines/train/recipes.py).

A *decisive* family wins as soon as one of its blocks is present: a hybrid (MobileViT,
FastViT, EfficientFormer) also holds plain ViT blocks, often more of them than its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Family:
    name: str
    blocks: tuple[str, ...]  # block class names that make a network of this family
    spaces: tuple[str, ...]  # the default search space(s) for a teacher of this family
    recipe: str = "sgd"  # the default training recipe (engines/train/recipes.py)
    decisive: bool = False  # any one of its blocks decides the family (hybrids)
    prune_inner_only: bool = False  # prune only inside the blocks (engines/models/attention.py outer_layers)


FAMILIES: tuple[Family, ...] = (
    Family("hybrid", ("MobileVitBlock", "MobileVitV2Block", "RepMixerBlock", "AttentionBlock", "MetaBlock1d",
                      "MetaBlock2d", "EfficientVitBlock", "LevitBlock"),
           ("mobilenetv3", "vit"), "adamw", decisive=True),
    Family("inverted residual", ("InvertedResidual", "DepthwiseSeparableConv", "EdgeResidual",
                                 "UniversalInvertedResidual"), ("mobilenetv3", "efficientnet")),
    Family("residual", ("BasicBlock", "Bottleneck"), ("resnet",)),
    Family("convnext", ("ConvNeXtBlock",), ("resnet",), "adamw"),
    Family("hierarchical transformer", ("SwinTransformerBlock", "SwinTransformerV2Block",
                                        "SwinTransformerV2CrBlock"), ("vit", "resnet"), "adamw", prune_inner_only=True),
    Family("vision transformer", ("Block", "ResPostBlock", "ParallelScalingBlock", "EncoderBlock"),
           ("vit", "resnet"), "adamw"),
)
DEFAULT_SPACES: tuple[str, ...] = ("resnet",)  # a family this table does not know
DEFAULT_RECIPE = "sgd"


def family_of(model: nn.Module) -> Family | None:
    """The family whose blocks the network is mostly made of; None when no block is known."""
    counts = Counter(type(m).__name__ for m in model.modules())
    for fam in FAMILIES:
        if fam.decisive and any(counts[b] for b in fam.blocks):
            return fam
    found = [(sum(counts[b] for b in f.blocks), i, f) for i, f in enumerate(FAMILIES) if not f.decisive]
    n, _, fam = max(found, key=lambda x: (x[0], -x[1]))
    return fam if n else None


def default_spaces(model: nn.Module) -> tuple[str, ...]:
    fam = family_of(model)
    return fam.spaces if fam is not None else DEFAULT_SPACES


def prunes_inner_only(model: nn.Module) -> bool:
    fam = family_of(model)
    return fam is not None and fam.prune_inner_only


def default_recipe(model: nn.Module) -> tuple[str, str | None]:
    """(recipe name, family name) for training ``model`` when the config leaves it to the family."""
    fam = family_of(model)
    return (fam.recipe, fam.name) if fam is not None else (DEFAULT_RECIPE, None)
