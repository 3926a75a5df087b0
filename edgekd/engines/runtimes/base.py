"""What a runtime is: something that loads a model file and runs batches.

The same runners validate exports against PyTorch (accuracy with the artifact's own
runtime) and measure latency, so a number in the report always comes from the exact
file that ships. This layer sits below both the exporters and the latency engine.
Which formats a runtime runs is in the formats table (core/formats.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgekd.core import registries
from edgekd.core.errors import BenchError
from edgekd.core.formats import format_named


@dataclass
class Runner:
    """A loaded model: ``run(x)`` maps a float32 NCHW array to logits."""

    run: Callable[[np.ndarray], np.ndarray]
    runtime: str
    version: str
    device: str
    precision: str
    threads: int | None
    sync: Callable[[], None] | None = None
    notes: str = ""


class Runtime:
    name: ClassVar[str]

    def unavailable_reason(self) -> str | None:
        """None when usable here, else why not (e.g. the package is not installed)."""
        return None

    def load(self, path: Path, *, precision: str, threads: int | None, device: str = "cpu") -> Runner:
        raise NotImplementedError


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def get_runtime(name: str) -> Runtime:
    runtime = registries.RUNTIMES.get(name, key="runtime")()
    reason = runtime.unavailable_reason()
    if reason:
        raise BenchError(f"runtime {name!r} is not usable here: {reason}")
    return runtime


def runtimes_for(fmt: str, names: list[str]) -> list[Runtime]:
    """The usable runtimes among ``names`` that run artifacts of format ``fmt``."""
    runs = format_named(fmt).runtimes
    out = []
    for n in names:
        b = registries.RUNTIMES.get(n, key="bench.runtimes")()
        if n in runs and b.unavailable_reason() is None:
            out.append(b)
    return out
