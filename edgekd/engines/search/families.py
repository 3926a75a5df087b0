"""Model families: what differs per family lives in this one table, not in branches across stages.

A family is recognised by the building blocks the network is made of (timm's and torchvision's
block classes), not by its name: a user's entry point or a timm variant with another name is
read the same way. The table decides the default search space: an inverted-residual
teacher (MobileNet, EfficientNet, MNASNet) is already efficient, so students of the ResNet
space are rarely faster than it; it gets inverted-residual students, searched in both spaces
of that family (small spaces: 24 + 12 architectures).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from torch import nn

from edgekd.core.config import SearchConfig
from edgekd.engines.search.spaces import SearchSpace, build_space


@dataclass(frozen=True)
class Family:
    name: str
    blocks: tuple[str, ...]  # block class names that make a network of this family
    spaces: tuple[str, ...]  # the default search space(s) for a teacher of this family


FAMILIES: tuple[Family, ...] = (
    Family("inverted residual", ("InvertedResidual", "DepthwiseSeparableConv", "EdgeResidual",
                                 "UniversalInvertedResidual"), ("mobilenetv3", "efficientnet")),
    Family("residual", ("BasicBlock", "Bottleneck"), ("resnet",)),
)
DEFAULT_SPACES: tuple[str, ...] = ("resnet",)  # a family this table does not know


def family_of(model: nn.Module) -> Family | None:
    """The family whose blocks the network is mostly made of; None when no block is known."""
    counts = Counter(type(m).__name__ for m in model.modules())
    found = [(sum(counts[b] for b in f.blocks), i, f) for i, f in enumerate(FAMILIES)]
    n, _, fam = max(found, key=lambda x: (x[0], -x[1]))
    return fam if n else None


def default_spaces(model: nn.Module) -> tuple[str, ...]:
    fam = family_of(model)
    return fam.spaces if fam is not None else DEFAULT_SPACES


def search_space(cfg: SearchConfig, teacher: nn.Module) -> SearchSpace:
    """The space the run searches: the configured one, else the teacher family's (several as one)."""
    if cfg.space is not None:
        return build_space(cfg.space.name, cfg.space.params)
    from edgekd.core.config import SearchSpaceRef
    from edgekd.engines.search.union import UnionSpace

    spaces = [build_space(n, SearchSpaceRef(name=n).params) for n in default_spaces(teacher)]
    return spaces[0] if len(spaces) == 1 else UnionSpace(spaces)
