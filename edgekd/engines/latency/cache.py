"""A cache of host timings, keyed by what a timing depends on.

A run times the same architectures more than once (the budgets probe the space's fastest
candidates, the search times them again, the teacher is timed at every start), and a re-run
of a config times everything again. A host timing depends on the architecture (not its
weights), the input and batch size, the runtimes and their versions, the threads and the
machine; keyed by exactly those, an earlier median is reused instead of timed again, which
also makes a re-run decide on the same numbers. Only the probes, the search and the
pruned-teacher source read it: the bench stage always times its files afresh, side by side.

The cache lives in ``$EDGEKD_CACHE_DIR`` (default ``~/.cache/edgekd``) as one JSON line per
timing; ``bench.timing_cache: false`` turns it off for a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from torch import nn

FILE = "host_timings.jsonl"
_enabled = True


def use_timing_cache(enabled: bool) -> None:
    """Set by the pipeline from ``bench.timing_cache`` before any timing."""
    global _enabled
    _enabled = enabled


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEKD_CACHE_DIR") or Path.home() / ".cache" / "edgekd")


def architecture(model: nn.Module) -> str:
    """The network's structure, weights aside: its modules as printed and every tensor's shape."""
    h = hashlib.sha256(repr(model).encode())
    for name, t in model.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
    return h.hexdigest()[:24]


@cache
def machine() -> str:
    """The CPU model and the cores this process may use."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu} x{cores}"


def _version(runtime: str) -> str:
    try:
        return metadata.version({"onnxruntime": "onnxruntime", "openvino": "openvino"}.get(runtime, runtime))
    except metadata.PackageNotFoundError:
        return "?"


def timing_key(model: nn.Module, *, input_size: int, batch: int, threads: int, runtimes: tuple[str, ...]) -> str:
    parts = [architecture(model), f"{input_size}px", f"b{batch}", f"t{threads}",
             *(f"{r}={_version(r)}" for r in sorted(runtimes)), machine()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def lookup(key: str) -> list[dict[str, Any]] | None:
    """The timings stored under ``key`` (one per runtime), None when absent or the cache is off."""
    return _entries().get(key) if _enabled else None


def store(key: str, timings: list[dict[str, Any]]) -> None:
    if not _enabled:
        return
    path = cache_dir() / FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:  # one line per timing: appends from several processes do not interleave
            f.write(json.dumps({"key": key, "timings": timings}) + "\n")
    except OSError:
        return  # a read-only home: time again next time
    _entries()[key] = timings


_loaded: dict[Path, dict[str, list[dict[str, Any]]]] = {}


def _entries() -> dict[str, list[dict[str, Any]]]:
    """Every stored timing, read once per process (a torn last line is skipped)."""
    path = cache_dir() / FILE
    if path not in _loaded:
        found: dict[str, list[dict[str, Any]]] = {}
        try:
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    found[rec["key"]] = rec["timings"]
                except (ValueError, KeyError, TypeError):
                    continue
        except OSError:
            pass
        _loaded[path] = found
    return _loaded[path]
