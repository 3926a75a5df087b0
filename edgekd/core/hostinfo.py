"""What this machine is, from /proc/cpuinfo (Linux): the CPU name for the report's
environment, the flags for decisions that depend on the instruction set."""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_field(name: str, cpuinfo: Path = CPUINFO) -> str | None:
    """The first ``name : value`` line of /proc/cpuinfo (Linux); None where there is none."""
    try:
        with cpuinfo.open() as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ":" in ln and ln.split(":", 1)[0].strip() == name), None)
    except OSError:
        return None
