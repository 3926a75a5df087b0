"""One latency figure and what it is: measured or predicted, on which runtime, at which precision,
for which target. Every latency edgekd states carries these, so measured and predicted never mix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Keys files written before "runtime" was the one word still hold (read as the new ones).
RENAMED_KEYS = {"backend": "runtime", "backend_version": "runtime_version", "best_backend": "best_runtime"}


def renamed(value: Any) -> Any:
    """``value`` with the old key names replaced, at every depth (lists and mappings)."""
    if isinstance(value, dict):
        return {RENAMED_KEYS.get(k, k): renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


@dataclass
class LatencyEstimate:
    ms: float
    kind: str  # measured | predicted
    runtime: str
    precision: str
    target: str

    def label(self) -> str:
        return f"{self.ms:.3f} ms ({self.kind}, {self.runtime} {self.precision}, {self.target})"
