"""The `edgekd` command: a thin layer over the Python API.

Parses arguments, calls ``edgekd.api``, prints, and maps errors to exit codes:
0 ok · 1 unexpected bug · 2 config/usage · 3 data · 4 model/checkpoint · 5 training ·
6 pruning · 7 quantization · 8 export · 9 bench · 10 profile/target · 11 search ·
12 run directory · 13 CI gate failed (report written) · 130 interrupted. Errors print one
message naming the problem and the fix.

Progress goes to stderr with bars on a terminal; when stdout is not a terminal (CI, ``| tee``)
it goes to stdout as plain lines, one per stage and per epoch, so the log has it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from edgekd.core.errors import EXIT_INTERRUPTED, EdgeKDError, GateError

if TYPE_CHECKING:
    from edgekd.core.progress import Reporter

HELP = {"help_option_names": ["-h", "--help"]}  # every command inherits it
app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, context_settings=HELP,
    help="Compress a vision model for an edge target: search, distill, prune, quantize, export, bench, report.",
)
profiles_app = typer.Typer(no_args_is_help=True, context_settings=HELP, help="Hardware profiles: list, show, calibrate.")
app.add_typer(profiles_app, name="profiles")

# Pipes and CI logs: one line per record, never wrapped at a width no terminal set (soft_wrap),
# and tables drawn 140 columns wide instead of squeezed to 80.
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, soft_wrap=True, width=140)
out = Console() if sys.stdout.isatty() else Console(soft_wrap=True, width=140)

ConfigArg = Annotated[Path, typer.Argument(help="the run's model.yaml")]
TargetOpt = Annotated[list[str] | None, typer.Option("--target", "-t", help="target profile name, alias or YAML path (repeatable)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or tables (for CI)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config key: --set distill.epochs=2")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run name (default: the YAML's stem)")]
OutOpt = Annotated[Path | None, typer.Option("--output-dir", help="where runs go (default: runs/)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print report.json to stdout")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="log more")]
class LogFormat(str, Enum):
    text = "text"
    json = "json"


LogFormatOpt = Annotated[LogFormat, typer.Option(
    "--log-format",
    help="text: lines for people; json: one JSON object per event on stdout (stage, epoch, warning, deploy, "
         "error on stderr), for pipelines")]
AccuracyGateOpt = Annotated[float | None, typer.Option(
    "--fail-under-accuracy", help="CI gate: exit 13 when the chosen model of a target reads under this many points "
    "(in its runtime); the report is written first")]
LatencyGateOpt = Annotated[str | None, typer.Option(
    "--fail-over-latency", help="CI gate: exit 13 when the chosen model of a target is slower than its latency "
    "budget ('budget') or than this many ms")]


def _version(value: bool) -> None:
    if value:
        from edgekd.core.version import __version__

        out.print(f"edgekd {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Compress a vision model for an edge target: search, distill, prune, quantize, export, bench, report."""


def _reporter(quiet: bool, log_format: str = "text") -> Reporter:
    """Bars on a terminal (stderr); plain flushed lines on stdout when it is a pipe or a log file;
    JSON events with ``--log-format json``."""
    from edgekd.core.progress import JsonReporter, Reporter

    if log_format == "json":
        return JsonReporter(sys.stdout)
    if quiet or sys.stdout.isatty():
        return Reporter(quiet)
    return Reporter(quiet, console=Console(file=sys.stdout, soft_wrap=True, width=140))


def _setup_logging(verbose: bool, log_format: str = "text") -> None:
    from rich.logging import RichHandler

    handler: logging.Handler = RichHandler(console=err, show_path=False, show_time=False)
    if log_format == "json":
        from edgekd.core.progress import JsonLogFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[handler], force=True)
    for noisy in ("nncf", "torch", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


def _guard(fn: Callable[[], Any], run_hint: str | None = None, verbose: bool = False,
           on_gate: Callable[[Any], None] | None = None, log_format: str = "text") -> Any:
    """Run ``fn``; turn edgekd errors and Ctrl-C into one message and an exit code. With ``verbose``
    the traceback of what caused the error (the user's own code, say) is shown first; a failed
    CI gate shows its report (``on_gate``) before the message."""
    try:
        return fn()
    except EdgeKDError as exc:
        if isinstance(exc, GateError) and on_gate is not None and exc.report is not None:
            on_gate(exc.report)
        cause = exc.__cause__
        if verbose and cause is not None:
            from rich.traceback import Traceback

            err.print(Traceback.from_exception(type(cause), cause, cause.__traceback__))
        if log_format == "json":
            from edgekd.core.progress import JsonReporter

            JsonReporter(sys.stderr).emit("error", kind=exc.kind, message=exc.message, fix=exc.hint,
                                          exit_code=exc.exit_code, finished_stages=exc.finished_stages)
            raise typer.Exit(exc.exit_code) from None
        err.print(f"[bold red]error[/] ({exc.kind}): {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"  [bold]fix[/]: {escape(exc.hint)}", highlight=False)
        if run_hint and exc.finished_stages:
            err.print(f"  [dim]{run_hint.format(stages=', '.join(exc.finished_stages))}[/]", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished stages are kept; continue with --resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _exec_torchrun(nproc: int) -> None:
    """``--nproc N`` is a shortcut: the same command under PyTorch's own launcher (one machine;
    for several, call torchrun with its rendezvous flags yourself)."""
    import os

    from edgekd.core.dist import launched_by_torchrun

    if launched_by_torchrun():
        return
    args = [a for i, a in enumerate(sys.argv[1:]) if not (a.startswith("--nproc") or
                                                          (i and sys.argv[i] == "--nproc"))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "edgekd", *args]
    err.print(f"[dim]{' '.join(cmd[1:])}[/]")
    sys.stdout.flush()
    os.execv(sys.executable, cmd)


def _command() -> str:
    return "edgekd " + " ".join(sys.argv[1:])


def _finish(report: Any, quiet: bool, as_json: bool, log_format: str = "text") -> None:
    from edgekd.engines.reporting.terminal import deploy_lines, result_events, search_table, summary_table

    if report is None:  # a torchrun rank other than 0: rank 0 prints the run
        return
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    if log_format == "json":
        from edgekd.core.progress import JsonReporter

        for event, fields in result_events(report):
            JsonReporter(sys.stdout).emit(event, **fields)
        return
    if not quiet:
        if report.search:
            out.print(search_table(report))
        if report.models:
            out.print(summary_table(report))
    for line in deploy_lines(report):  # the run's result, also under --quiet: what each target ships
        out.print(escape(f"deploy: {line}"), highlight=False)
    files = Path(report.run_dir) / "report"
    if (files / "report.json").exists():
        out.print(escape(f"report: {files / 'report.md'} · {files / 'report.json'} · {files / 'report.html'}"),
                  highlight=False)


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


@profiles_app.command("list")
def profiles_list() -> None:
    """List the known hardware profiles."""
    from rich.table import Table

    from edgekd.core.profiles import available_profiles

    profs = _guard(available_profiles)
    t = Table("name", "aliases", "kind", "runtimes", "precisions", "budget (ms)", "latency")
    for p in profs.values():
        t.add_row(*(escape(c) for c in (p.name, ", ".join(p.aliases), p.kind, ", ".join(p.runtimes),
                                         ", ".join(p.precisions), f"{p.latency_budget_ms:g}",
                                         "measured" if p.measured_here else "predicted")))
    out.print(t)


@profiles_app.command("show")
def profiles_show(name: Annotated[str, typer.Argument(help="profile name, alias or YAML path")]) -> None:
    """Print one profile."""
    import yaml

    from edgekd.core.profiles import resolve_target

    prof, note = _guard(lambda: resolve_target(name))
    if note:
        err.print(escape(note))
    out.print(yaml.safe_dump(prof.model_dump(mode="json", exclude_none=True), sort_keys=False), highlight=False)


@profiles_app.command("calibrate")
def profiles_calibrate(
    name: Annotated[str, typer.Argument(help="profile to fit: host (measured here) or a device profile")],
    from_: Annotated[list[Path] | None, typer.Option("--from", help="device-kit results JSON measured on that device")] = None,
    exports: Annotated[Path | None, typer.Option("--exports", help="the run's export folder (ONNX graphs of those results)")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="where to write the fitted profile")] = None,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Fit a profile's roofline efficiency factors to measured latencies and save it."""
    from edgekd import api

    _setup_logging(False)
    res = _guard(lambda: api.calibrate_profile(name, results=from_ or [], exports=exports, out=out_path,
                                               threads=threads, quiet=quiet))
    a = res["after"]
    out.print(escape(f"{res['profile']}: median |error| {a['median_abs_error']:.1%}, {a['within_10pct']:.0%} within "
                     f"±10% on {a['models']} fitting models → {res['path']}"), highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
