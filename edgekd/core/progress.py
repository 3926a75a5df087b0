"""Progress bars and status lines for long work, silenced by ``--quiet`` for CI.

One reporter per run. On a terminal, progress tasks come and go (a training run, a search)
under one rich live display, and status lines print above it. Elsewhere (a CI log, a pipe
into ``tee``) bars would print nothing until the end, so the reporter writes plain lines
instead, each flushed at once: one per stage start and end (with its seconds) and one per
training epoch. With ``quiet`` nothing is drawn, and warnings still reach the log.
"""

from __future__ import annotations

import logging
import time
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
        self.stage = ""  # the stage running now, named in the plain progress lines

    @property
    def live(self) -> bool:
        """Bars are drawn (a terminal); otherwise progress is written as plain lines."""
        return self.console.is_terminal

    def line(self, message: str) -> None:
        """A status line (rich markup: escape the user's and libraries' text), unless quiet."""
        if not self.quiet:
            self.console.print(message, soft_wrap=not self.live)  # a log keeps one line per message
            self._flush()

    def plain(self, message: str) -> None:
        """A progress line for logs (CI, pipes), taken as text; on a terminal the bars show it instead."""
        if not self.quiet and not self.live:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)
            self._flush()

    def _flush(self) -> None:
        flush = getattr(self.console.file, "flush", None)
        if flush is not None:
            flush()

    def stage_started(self, name: str) -> None:
        self.stage = name
        self.plain(f"{name}: started at {time.strftime('%H:%M:%S')}")

    def stage_done(self, name: str, seconds: float) -> None:
        self.plain(f"{name}: done in {seconds:.1f} s")
        self.stage = ""

    def epoch(self, label: str, epoch: int, epochs: int, *, loss: float, accuracy: float, elapsed: float) -> None:
        """One training epoch, as a line in logs: ``distill: distill resnet18 epoch 2/10 loss 0.4123 val 93.21% 12.3 s``."""
        where = f"{self.stage}: " if self.stage else ""
        self.plain(f"{where}{label} epoch {epoch}/{epochs} loss {loss:.4f} val {accuracy:.2f}% "
                   f"elapsed {elapsed:.1f} s")

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
        tid = self._progress.add_task(escape(description), total=total, status=escape(fields.get("status", "")))
        self._open += 1
        progress = self._progress

        def advance(n: float = 1, **upd: Any) -> None:
            progress.update(tid, advance=n, **({"status": escape(upd["status"])} if "status" in upd else {}),
                            **({"total": upd["total"]} if "total" in upd else {}))  # work that grew (bench rounds)

        try:
            yield advance
        finally:
            progress.remove_task(tid)
            self._open -= 1
            if self._open == 0:
                progress.stop()
                self._progress = None


SILENT = Reporter(quiet=True)


class JsonLogFormatter(logging.Formatter):
    """A library's log record as one JSON object (``--log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created)),
                           "event": "log", "level": record.levelname.lower(), "logger": record.name,
                           "message": record.getMessage()}, ensure_ascii=False)


class JsonReporter(Reporter):
    """``--log-format json``: one JSON object per line and event, for pipelines that parse logs.

    Every object has ``time`` (ISO 8601), ``event`` and ``stage`` (the stage running, or null);
    ``line``/``warning`` carry ``message`` (plain text), ``epoch`` carries ``label``, ``epoch``,
    ``epochs``, ``loss``, ``accuracy`` (percent) and ``elapsed_s``, ``stage_done`` ``seconds``.
    No bars, no tables: progress is the events themselves.
    """

    def __init__(self, stream: Any = None) -> None:
        import sys

        super().__init__(quiet=False, console=Console(file=stream or sys.stdout, soft_wrap=True))
        self.stream = stream or sys.stdout

    @property
    def live(self) -> bool:
        return False

    def emit(self, event: str, **fields: Any) -> None:
        import json

        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, "stage": self.stage or None, **fields}
        self.stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        self.stream.flush()

    def line(self, message: str) -> None:
        from rich.text import Text

        self.emit("line", message=Text.from_markup(message).plain)

    def plain(self, message: str) -> None:
        self.emit("line", message=message)

    def stage_started(self, name: str) -> None:
        self.stage = name
        self.emit("stage_started")

    def stage_done(self, name: str, seconds: float) -> None:
        self.emit("stage_done", seconds=round(seconds, 2))
        self.stage = ""

    def epoch(self, label: str, epoch: int, epochs: int, *, loss: float, accuracy: float, elapsed: float) -> None:
        self.emit("epoch", label=label, epoch=epoch, epochs=epochs, loss=round(loss, 5), accuracy=round(accuracy, 3),
                  elapsed_s=round(elapsed, 2))

    def warn(self, topic: str, message: str) -> None:
        self.emit("warning", topic=topic, message=message)

    @contextmanager
    def task(self, description: str, total: float | None, **fields: Any) -> Iterator[Advance]:
        yield lambda *a, **k: None
