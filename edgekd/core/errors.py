"""One exception hierarchy; each class carries the CLI exit code it maps to.

Every user-facing failure raises one of these with a message that names the thing that
went wrong and the fix, so the CLI can print it as one line and exit non-zero without a
traceback. Anything else escaping is a bug (exit 1, traceback shown).
"""

from __future__ import annotations


class EdgeKDError(Exception):
    """Base class: a failure the user can act on."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.finished_stages: list[str] = []  # set by the pipeline: what is kept for --resume
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")


class ConfigError(EdgeKDError):
    """Bad YAML, unknown key, wrong type, unknown registry name, bad CLI value."""

    exit_code = 2
    kind = "config"


class DataError(EdgeKDError):
    """Missing data directory, unreadable image, too few samples."""

    exit_code = 3
    kind = "data"


class ModelError(EdgeKDError):
    """Model cannot be built, checkpoint missing/corrupt/unsafe, class-count mismatch."""

    exit_code = 4
    kind = "model"


class TrainingError(EdgeKDError):
    """NaN/inf loss, divergence: the stage stops instead of saving garbage."""

    exit_code = 5
    kind = "training"


class PruningError(EdgeKDError):
    """A layer torch-pruning cannot handle, or a target the model cannot reach."""

    exit_code = 6
    kind = "pruning"


class QuantizationError(EdgeKDError):
    """Quantization failed or the quantized model lost too much accuracy."""

    exit_code = 7
    kind = "quantization"


class ExportError(EdgeKDError):
    """Export failed, or the exported artifact disagrees with PyTorch."""

    exit_code = 8
    kind = "export"


class BenchError(EdgeKDError):
    """A runtime is missing or failed to run a model."""

    exit_code = 9
    kind = "bench"


class ProfileError(EdgeKDError):
    """Unknown target, or a hardware profile file that does not validate."""

    exit_code = 10
    kind = "profile"


class SearchError(EdgeKDError):
    """Bad search space, or no candidate satisfies the constraints."""

    exit_code = 11
    kind = "search"


class RunDirError(EdgeKDError):
    """Run directory exists without --resume, is in use by another run, cannot be created or
    written (a file in the path, read-only, disk full), or its manifest is unreadable."""

    exit_code = 12
    kind = "run"


class GateError(EdgeKDError):
    """A CI gate failed (--fail-under-accuracy, --fail-over-latency): the run finished and its
    report is written (``.report``), but the chosen model misses the bar."""

    exit_code = 13
    kind = "gate"

    def __init__(self, message: str, *, hint: str | None = None, report: object = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


EXIT_INTERRUPTED = 130

ALL_ERRORS: tuple[type[EdgeKDError], ...] = (
    ConfigError,
    DataError,
    ModelError,
    TrainingError,
    PruningError,
    QuantizationError,
    ExportError,
    BenchError,
    ProfileError,
    SearchError,
    RunDirError,
    GateError,
)
