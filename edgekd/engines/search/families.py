"""The space a run searches: the configured one, else the one(s) the teacher's family calls for
(the family table is engines/models/families.py)."""

from __future__ import annotations

from torch import nn

from edgekd.core.config import SearchConfig, SearchSpaceRef
from edgekd.engines.models.families import default_spaces
from edgekd.engines.search.spaces import SearchSpace, build_space
from edgekd.engines.search.union import UnionSpace


def search_space(cfg: SearchConfig, teacher: nn.Module, image_size: int | None = None) -> SearchSpace:
    """The configured space, else the teacher family's (several as one). ``image_size``: the input
    the students are built for (a ViT's position embedding has one entry per patch)."""
    if cfg.space is not None:
        return build_space(cfg.space.name, cfg.space.params, image_size)
    spaces = [build_space(n, SearchSpaceRef(name=n).params, image_size) for n in default_spaces(teacher)]
    return spaces[0] if len(spaces) == 1 else UnionSpace(spaces)
