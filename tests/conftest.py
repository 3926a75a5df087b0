"""Shared fixtures: tiny configs (16 px digits, 1-block ResNets) so the suite stays fast."""

from __future__ import annotations

import copy
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))
# host timings are cached per machine (engines/latency/cache.py): the suite keeps its own, shared by
# its tests and thrown away after, so a developer's cache neither feeds nor is fed by the tests
os.environ["EDGEKD_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgekd-test-cache-")

TEACHER = {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}}
STUDENT = {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 16}}


def docs_script(name: str):  # noqa: ANN201 - the module
    """A script of docs/ (``import_graph``, ``config_reference``) loaded as a module."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "docs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def free_port() -> int:
    """A local TCP port nobody listens on, for a test's own gloo process group (MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_config(out: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "tiny",
        "output_dir": str(out),
        "seed": 0,
        "data": {"source": "digits", "image_size": 16},
        "teacher": {**copy.deepcopy(TEACHER), "train": {"epochs": 6, "batch_size": 64, "optimizer": {"lr": 0.05}}},
        "student": copy.deepcopy(STUDENT),
        "stages": ["distill", "export", "bench", "report"],
        "distill": {"epochs": 2, "batch_size": 64},
        "bench": {"repeats": 5, "rounds": 2, "warmup": 2},
        # tiny teachers are not slower than their students: judge by the profiles' absolute budgets
        # (the relative default has its own tests)
        "search": {"constraints": {"speedup": None}},
    }
    for key, value in over.items():
        cfg[key] = value
    return cfg


FINISHED_RUN_COMMAND = "edgekd compress tiny.yaml --target host"


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory):
    """One finished tiny run (teacher, distill, export, bench, report), shared read-only."""
    import edgekd

    out = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(out)
    report = edgekd.compress(cfg, ["host"], quiet=True, command=FINISHED_RUN_COMMAND)
    return cfg, report, out / "tiny"


def export_plan(export: Any = None, targets: list[Any] | None = None) -> Any:
    """The run plan for an exporter test: this export section, these target profiles."""
    from edgekd.core.config import Config
    from edgekd.engines.plan.deployment import plan_run

    cfg = tiny_config(Path("/nonexistent"))
    if export is not None:
        cfg["export"] = export.model_dump(mode="json")
    return plan_run(Config.model_validate(cfg), targets or [], host_vnni=None)
