"""`edgekd profiles`: list, show and calibrate the hardware profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgekd.cli.common import (
    QuietOpt,
    _guard,
    _setup_logging,
    err,
    out,
    profiles_app,
)


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
