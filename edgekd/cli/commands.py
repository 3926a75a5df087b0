"""The pipeline's commands: compress, one command per stage, bench, report, init."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgekd.cli.common import (
    AccuracyGateOpt,
    ConfigArg,
    JsonOpt,
    LatencyGateOpt,
    LogFormat,
    LogFormatOpt,
    NameOpt,
    OutOpt,
    QuietOpt,
    SetOpt,
    TargetOpt,
    VerboseOpt,
    _command,
    _exec_torchrun,
    _finish,
    _guard,
    _reporter,
    _setup_logging,
    app,
    err,
    out,
)


@app.command()
def compress(
    config: ConfigArg,
    target: TargetOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue a run: skip stages done with the same inputs")] = False,
    force: Annotated[bool, typer.Option("--force", help="delete an existing run of this name and start over")] = False,
    set_: SetOpt = None,
    name: NameOpt = None,
    output_dir: OutOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="train with N processes on this machine: "
                                       "re-runs this command under `torchrun --nproc_per_node N`")] = 1,
    fail_under_accuracy: AccuracyGateOpt = None,
    fail_over_latency: LatencyGateOpt = None,
    log_format: LogFormatOpt = LogFormat.text,
) -> None:
    """Run the whole pipeline on CONFIG for the given targets."""
    from edgekd import api

    if nproc > 1:
        _exec_torchrun(nproc)
    _setup_logging(verbose, log_format)
    report = _guard(lambda: api.compress(config, target, resume=resume, force=force, overrides=set_ or [], name=name,
                                         output_dir=output_dir, command=_command(),
                                         reporter=_reporter(quiet or as_json, log_format),
                                         fail_under_accuracy=fail_under_accuracy,
                                         fail_over_latency=fail_over_latency),
                    run_hint="finished stages ({stages}) are kept in the run folder; fix the cause and re-run "
                    "with --resume", verbose=verbose, on_gate=lambda r: _finish(r, quiet, as_json, log_format),
                    log_format=log_format)
    _finish(report, quiet, as_json, log_format)


def _stage_command(stage: str, doc: str) -> Callable[..., None]:
    def command(
        config: ConfigArg,
        target: TargetOpt = None,
        set_: SetOpt = None,
        name: NameOpt = None,
        output_dir: OutOpt = None,
        quiet: QuietOpt = False,
        as_json: JsonOpt = False,
        verbose: VerboseOpt = False,
        log_format: LogFormatOpt = LogFormat.text,
    ) -> None:
        from edgekd import api

        _setup_logging(verbose, log_format)
        report = _guard(lambda: api.run_stage(stage, config, target, overrides=set_ or [], name=name,
                                              output_dir=output_dir, command=_command(),
                                              reporter=_reporter(quiet or as_json, log_format)),
                        verbose=verbose, log_format=log_format)
        _finish(report, quiet, as_json, log_format)

    command.__doc__ = doc
    command.__name__ = stage
    return command


for _stage, _doc in (
    ("search", "Choose the student architecture without training (DisWOT) and print the ranking."),
    ("distill", "Train the student from the teacher (reuses the run's teacher)."),
    ("prune", "Prune the run's student (or student.checkpoint) to a MACs/params/latency target, with KD fine-tuning."),
    ("quantize", "INT8: calibrate, then QAT with the FP32 teacher's soft targets (or PTQ only)."),
    ("export", "Export the run's models (ONNX, ...) and validate each against PyTorch."),
):
    app.command(name=_stage)(_stage_command(_stage, _doc))


@app.command()
def bench(
    path: Annotated[Path, typer.Argument(help="a model.yaml (runs the bench stage) or a model file: .onnx, .xml, .engine, edgekd model folder")],
    target: TargetOpt = None,
    runtime: Annotated[list[str] | None, typer.Option("--runtime", "-r", "--backend", "-b",
                                                      help="runtimes to time (default: all that run the file); "
                                                           "--backend is its old name")] = None,
    batch: Annotated[int, typer.Option("--batch", help="batch size")] = 1,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads (default: all cores)")] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="timed calls per round")] = 50,
    precision: Annotated[str | None, typer.Option("--precision", help="override the detected precision label")] = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Latency of a run's models (MODEL.yaml) or of any exported file, measured on host, predicted elsewhere."""
    from edgekd import api

    _setup_logging(False)
    if path.suffix in (".yaml", ".yml"):
        rep = _guard(lambda: api.run_stage("bench", path, target, overrides=set_ or [], command=_command(),
                                           reporter=_reporter(quiet or as_json)))
        _finish(rep, quiet, as_json)
        return
    rows = _guard(lambda: api.bench_file(path, target, runtimes=runtime, batch_size=batch, threads=threads,
                                         repeats=repeats, precision=precision, quiet=quiet or as_json))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from edgekd.engines.reporting.points import figure

    t = Table(title=escape(f"edgekd bench · {path.name}"), title_justify="left")
    for col in ("Target", "Kind", "Runtime", "Format", "Precision", "Batch", "Threads", "Median (ms)", "p90 (ms)", "img/s"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(escape(c) for c in (
            r["target"], r["kind"], f"{r['runtime']} {r['runtime_version']}", r["format"], r["precision"],
            str(r["batch_size"]), str(r["threads"] or "–"), figure(r["median_ms"], r["kind"], 4),
            figure(r.get("p90_ms"), r["kind"], 4), figure(r.get("throughput_ips"), r["kind"], 1))))
    out.print(t)
    for r in rows:
        if r.get("unstable"):
            out.print(escape(f"{r['runtime']}: {r['notes']}; re-run when the machine is idle to trust this median"))


@app.command()
def report(
    run_dir: Annotated[Path | None, typer.Argument(help="a finished run folder, e.g. runs/digits")] = None,
    import_: Annotated[list[Path] | None, typer.Option("--import", help="device-kit results JSON to merge (repeatable)")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    fail_under_accuracy: AccuracyGateOpt = None,
    fail_over_latency: LatencyGateOpt = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON Schema of report.json and exit")] = False,
) -> None:
    """Re-render a run's report, merging device-kit measurements from the target (the run's own
    command and history stay as they were; the re-render is added to `renders`)."""
    from edgekd import api

    if schema:
        from edgekd.engines.reporting.schema import json_schema

        print(json.dumps(json_schema(), indent=2))
        return
    if run_dir is None:
        err.print("[bold red]error[/] (config): give the run folder, e.g. edgekd report runs/digits "
                  "(or --schema)", highlight=False)
        raise typer.Exit(2)
    _setup_logging(False)
    rep = _guard(lambda: api.report(run_dir, imports=import_ or [], command=_command(),
                                    reporter=_reporter(quiet or as_json), fail_under_accuracy=fail_under_accuracy,
                                    fail_over_latency=fail_over_latency),
                 on_gate=lambda r: _finish(r, quiet, as_json))
    _finish(rep, quiet, as_json)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="where to write the starter config")] = Path("model.yaml"),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented starter config."""
    from importlib.resources import files

    def write() -> None:
        from edgekd.core.errors import ConfigError

        if path.exists() and not force:
            raise ConfigError(f"{path} exists", hint="pass --force to overwrite, or give another path")
        path.write_text(files("edgekd").joinpath("templates/starter.yaml").read_text())

    _guard(write)
    out.print(escape(f"wrote {path}: edit it, then run  edgekd compress {path} --target host"), highlight=False)
