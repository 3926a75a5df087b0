"""Progress bars and status lines for long work, silenced by ``--quiet`` for CI.

One reporter per run. Progress tasks come and go (a training run, a search) under one
rich live display; status lines print above it. With ``quiet`` nothing is drawn, and
warnings still reach the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[..., None]
log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._open = 0

    def line(self, message: str) -> None:
        """A status line (rich markup allowed), unless quiet."""
        if not self.quiet:
            self.console.print(message)

    def warn(self, topic: str, message: str) -> None:
        """A warning line (``topic: message``); with quiet it goes to the log, so CI output keeps it."""
        if self.quiet:
            log.warning("%s: %s", topic, message)
        else:
            self.console.print(f"[yellow]{escape(topic)}[/]: {escape(message)}")

    @contextmanager
    def task(self, description: str, total: float | None, **fields: Any) -> Iterator[Advance]:
        """A progress bar; yields ``advance(n=1, **fields)`` to move it and update its text."""
        if self.quiet:
            yield lambda *a, **k: None
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=self.console,
                transient=True,
                disable=not self.console.is_terminal,  # CI logs: status lines only, no redraws
            )
            self._progress.start()
        tid = self._progress.add_task(description, total=total, status=fields.get("status", ""))
        self._open += 1
        progress = self._progress

        def advance(n: float = 1, **upd: Any) -> None:
            progress.update(tid, advance=n, **({"status": upd["status"]} if "status" in upd else {}))

        try:
            yield advance
        finally:
            progress.remove_task(tid)
            self._open -= 1
            if self._open == 0:
                progress.stop()
                self._progress = None


SILENT = Reporter(quiet=True)
