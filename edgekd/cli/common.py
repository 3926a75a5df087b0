"""What every `edgekd` command shares: the app, the consoles, the option types, and the
error guard that maps an EdgeKDError to its exit code with one message and no traceback."""

from __future__ import annotations

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
