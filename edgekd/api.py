"""The Python API: what the CLI calls, for embedding edgekd in MLOps pipelines.

    import edgekd
    report = edgekd.compress("model.yaml", targets=["host"], quiet=True)
    report.model("student").accuracy, report.best_latency("student")

Every function raises an ``edgekd.EdgeKDError`` subclass with a message naming the
problem and the fix; finished stages stay on disk and ``resume=True`` continues.
CI gates (``fail_under_accuracy``, ``fail_over_latency``) raise ``GateError`` after the
report is written; the report is on the exception (``exc.report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.core.config import Config
from edgekd.core.config_file import load_config
from edgekd.core.errors import GateError
from edgekd.core.progress import Reporter
from edgekd.engines.reporting.gates import gate_spec, gates_message
from edgekd.engines.reporting.schema import Report
from edgekd.pipeline import Pipeline

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
    fail_under_accuracy: float | None = None,
    fail_over_latency: str | float | None = None,
) -> Report:
    """Run the whole pipeline (the config's ``stages``) and return the report.

    ``fail_under_accuracy`` (points) and ``fail_over_latency`` ("budget" or ms) gate the
    chosen model of each target (reporting/gates.py): GateError when it misses one.
    """
    gates = gate_spec(fail_under_accuracy, fail_over_latency)
    cfg = _config(config, overrides, name, output_dir)
    pipe = Pipeline(cfg, targets, resume=resume, force=force, reporter=reporter or Reporter(quiet), command=command,
                    gates=gates)
    return check_gates(pipe.run())


def check_gates(report: Report | None) -> Report | None:
    """``report``, or GateError (exit 13) naming every gate it failed. None under torchrun on
    ranks other than 0: rank 0 holds the report and applies the gates."""
    if report is None:
        return None
    failed = report.failed_gates()
    if failed:
        raise GateError(gates_message(failed), report=report,
                        hint="the report is written; see its `gates` (report.json) for each value and threshold")
    return report


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
    """Train the student from the run's teacher."""
    return run_stage("distill", config, targets, **kw)


def prune(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    """Prune the run's latest student (or ``student.checkpoint``), fine-tuning by distillation."""
    return run_stage("prune", config, targets, **kw)


def quantize(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    """INT8 QAT with the teacher (or PTQ) on the run's latest student."""
    return run_stage("quantize", config, targets, **kw)


def export(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    """Export and validate every model of the run for the targets."""
    return run_stage("export", config, targets, **kw)


def bench(config: ConfigLike, targets: list[str] | None = None, **kw: Any) -> Report:
    """Time the run's exports on host and predict them on the other targets."""
    return run_stage("bench", config, targets, **kw)


def report(run_dir: str | Path, *, imports: list[str | Path] = (), quiet: bool = False, command: str = "",
           reporter: Reporter | None = None, fail_under_accuracy: float | None = None,
           fail_over_latency: str | float | None = None) -> Report:
    """Re-render a run's report; ``imports`` merges device-kit result files first. The report keeps
    the run's own command and resumed flags; this re-render is added to its ``renders``."""
    import json

    import yaml

    from edgekd.core.errors import RunDirError
    from edgekd.engines.reporting.rerender import import_results

    gates = gate_spec(fail_under_accuracy, fail_over_latency)
    run = Path(run_dir)
    cfg_file = run / "config.yaml"
    if not cfg_file.exists():
        raise RunDirError(f"{run} is not an edgekd run (no config.yaml)", hint="pass the run folder, e.g. runs/digits")
    if imports:
        import_results(run, [Path(p) for p in imports])
    raw = yaml.safe_load(cfg_file.read_text())
    raw["output_dir"], raw["name"] = str(run.parent), run.name
    manifest = json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").exists() else {}
    targets = manifest.get("targets")  # the run's own targets, as it was run
    pipe = Pipeline(load_config(raw), targets, reporter=reporter or Reporter(quiet), command=command, gates=gates)
    return check_gates(pipe.run(only=["report"]))


def bench_file(path: str | Path, targets: list[str] | None = None, *, runtimes: list[str] | None = None,
               batch_size: int = 1, threads: int | None = None, repeats: int = 50, rounds: int = 3,
               precision: str | None = None, quiet: bool = False, backends: list[str] | None = None) -> list[dict]:
    """Latency of one exported file on each target (measured on host, predicted elsewhere).
    ``backends`` is the deprecated name of ``runtimes``, read as ``bench.backends`` is."""
    from edgekd.core.config import BenchConfig
    from edgekd.engines.latency.bench_file import bench_file as _bench
    from edgekd.pipeline import resolve_targets

    reporter = Reporter(quiet)
    profiles = resolve_targets(targets or ["host"], reporter)
    cfg = BenchConfig(**{k: v for k, v in {"runtimes": runtimes, "backends": backends, "batch_size": batch_size, "threads": threads,
                                            "repeats": repeats, "rounds": rounds}.items() if v is not None})
    return [r.as_dict() for r in _bench(Path(path), profiles, cfg, precision=precision, reporter=reporter)]


def calibrate_profile(target: str, *, results: list[str | Path] = (), exports: str | Path | None = None,
                      out: str | Path | None = None, threads: int | None = None, quiet: bool = False) -> dict:
    """Fit a profile's roofline factors: on host from measured zoo models, else from device-kit results."""
    from edgekd.engines.latency.profile_fit import calibrate

    return calibrate(target, results=[Path(r) for r in results], exports=Path(exports) if exports else None,
                     out=Path(out) if out else None, threads=threads, reporter=Reporter(quiet))
