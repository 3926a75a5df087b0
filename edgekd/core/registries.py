"""The project's registries, each with the modules that fill it (imported on first use).

Exporters and runtimes are listed in the formats table (core/formats.py), so a
new format or runtime is registered in one place.
"""

from __future__ import annotations

from edgekd.core import formats
from edgekd.core.registry import Registry

DATASETS: Registry = Registry(
    "data set", ("edgekd.engines.data.digits", "edgekd.engines.data.synthetic", "edgekd.engines.data.imagefolder")
)
LOSSES: Registry = Registry("distillation loss", ("edgekd.engines.train.losses", "edgekd.engines.train.ofa"))
SEARCH_SPACES: Registry = Registry("search space", ("edgekd.engines.search.spaces",))
IMPORTANCES: Registry = Registry("pruning importance", ("edgekd.engines.pruning.importance",))
EXPORTERS: Registry = Registry("exporter", lambda: tuple(f.exporter for f in formats.FORMATS if f.exporter))
RUNTIMES: Registry = Registry("runtime", lambda: tuple(r.module for r in formats.RUNTIMES))
