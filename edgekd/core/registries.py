"""The project's registries, each with the modules that fill it (imported on first use).

Exporters and benchmark backends are listed in the formats table (core/formats.py), so a
new format or runtime is registered in one place.
"""

from __future__ import annotations

from edgekd.core import formats
from edgekd.core.registry import Registry

DATASETS: Registry = Registry(
    "data set", ("edgekd.data.digits", "edgekd.data.synthetic", "edgekd.data.imagefolder")
)
LOSSES: Registry = Registry("distillation loss", ("edgekd.train.losses",))
SEARCH_SPACES: Registry = Registry("search space", ("edgekd.search_spaces.spaces",))
IMPORTANCES: Registry = Registry("pruning importance", ("edgekd.pruning.importance",))
EXPORTERS: Registry = Registry("exporter", lambda: tuple(f.exporter for f in formats.FORMATS if f.exporter))
BACKENDS: Registry = Registry("benchmark backend", lambda: tuple(r.module for r in formats.RUNTIMES))
