"""The Python API: what the CLI calls, for embedding edgekd in MLOps pipelines.

    import edgekd
    report = edgekd.compress("model.yaml", targets=["host"], quiet=True)
    report.model("student").accuracy, report.best_latency("student")

Every function raises an ``edgekd.EdgeKDError`` subclass with a message naming the
problem and the fix; finished stages stay on disk and ``resume=True`` continues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.core.config import Config, load_config
from edgekd.core.progress import Reporter
from edgekd.pipeline import Pipeline
from edgekd.reporting.schema import Report

ConfigLike = str | Path | dict[str, Any] | Config


def _config(config: ConfigLike, overrides: list[str] | tuple[str, ...], name: str | None,
            output_dir: str | Path | None) -> Config:
    cfg = load_config(config, overrides)
    updates: dict[str, Any] = {}
    if name:
        updates["name"] = name
    if output_dir:
        updates["output_dir"] = Path(output_dir)
    if cfg.name is None and "name" not in updates:
        updates["name"] = "run"
    return cfg.model_copy(update=updates) if updates else cfg


def compress(
    config: ConfigLike,
    targets: list[str] | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    name: str | None = None,
    output_dir: str | Path | None = None,
    command: str = "",
    reporter: Reporter | None = None,
) -> Report:
    """Run the whole pipeline (the config's ``stages``) and return the report."""
    cfg = _config(config, overrides, name, output_dir)
    pipe = Pipeline(cfg, targets, resume=resume, force=force, reporter=reporter or Reporter(quiet), command=command)
    return pipe.run()


def run_stage(
    stage: str,
    config: ConfigLike,
    targets: list[str] | None = None,
    *,
    quiet: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    name: str | None = None,
    output_dir: str | Path | None = None,
    command: str = "",
    reporter: Reporter | None = None,
) -> Report:
    """Run one stage on top of the run directory's earlier results (``edgekd prune`` etc.)."""
    cfg = _config(config, overrides, name, output_dir)
    pipe = Pipeline(cfg, targets, reporter=reporter or Reporter(quiet), command=command)
    return pipe.run(only=[stage])


def search(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    """Choose the student architecture without training (DisWOT)."""
    return run_stage("search", config, targets, **kw)


def distill(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    return run_stage("distill", config, targets, **kw)


def prune(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    return run_stage("prune", config, targets, **kw)


def quantize(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    return run_stage("quantize", config, targets, **kw)


def export(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    return run_stage("export", config, targets, **kw)


def bench(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    return run_stage("bench", config, targets, **kw)
