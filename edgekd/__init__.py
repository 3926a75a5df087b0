"""edgekd: from a large vision model to a small, fast, measured edge model in one command.

The public API is imported lazily so that ``import edgekd`` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import Any

from edgekd.core.offline import disable_telemetry
from edgekd.core.version import __version__

disable_telemetry()  # before anything imports NNCF


_API = ("compress", "run_stage", "search", "distill", "prune", "quantize", "export", "bench")
_ERRORS = ("EdgeKDError", "ConfigError", "DataError", "ModelError", "TrainingError", "PruningError",
           "QuantizationError", "ExportError", "BenchError", "ProfileError", "SearchError", "RunDirError", "GateError")

__all__ = ["__version__", "api", *_API, *_ERRORS, "load_config", "Report"]


def __getattr__(name: str) -> Any:
    if name == "api":  # `import edgekd; edgekd.api.bench_file(...)` without `import edgekd.api`
        import edgekd.api

        return edgekd.api
    if name in _API:
        from edgekd import api

        return getattr(api, name)
    if name in _ERRORS:
        from edgekd.core import errors

        return getattr(errors, name)
    if name == "load_config":
        from edgekd.core.config_file import load_config

        return load_config
    if name == "Report":
        from edgekd.engines.reporting.schema import Report

        return Report
    raise AttributeError(f"module 'edgekd' has no attribute {name!r}")
