"""One edgekd run per run folder at a time: ``runs/<name>/.lock``, held with ``flock``.

Two runs on one folder (two terminals, a CI retry) would interleave their writes and
record each other's artifacts. The kernel drops an ``flock`` when its process dies, even
under ``kill -9``, so a lock left by a killed run is simply taken over; the file's text
(pid, host, start time) only serves the messages.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from edgekd.core.errors import RunDirError

try:
    import fcntl
except ImportError:  # not POSIX: no locking (the run still works)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _holder(text: str) -> str:
    """``pid N on host, started T`` from a lock file's text (partial when it is mid-write)."""
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (ValueError, TypeError, KeyError):
        return "pid unknown"


class RunLock:
    """An exclusive lock on a run folder; ``note`` says when a dead run's lock was taken over."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self.note: str | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunDirError naming the run that holds it."""
        if fcntl is None or self._fd is not None:
            return
        for _ in range(10):  # a holder may unlink the file between our open and our flock: retry
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held_by = _holder(self._read(fd))
                os.close(fd)
                raise RunDirError(
                    f"{self.path.parent} is in use by another edgekd run ({held_by})",
                    hint="wait for it to finish or stop it; use --name (or --output-dir) to start a separate run",
                ) from None
            except OSError:  # a file system without locks (some network mounts): run unlocked
                os.close(fd)
                return
            if self._same_file(fd):
                self._fd = fd
                self._claim(fd)
                return
            os.close(fd)
        raise RunDirError(f"cannot lock {self.path}: it keeps changing", hint="is another edgekd run starting there?")

    def release(self) -> None:
        """Unlink, then unlock: a waiting run re-checks that it locked the file still on disk."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot write in the run folder {self.path.parent}: {exc.strerror}",
                              hint="pass --output-dir (or set output_dir:) to a folder you can write to") from None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _read(fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 4096).decode(errors="replace")

    def _claim(self, fd: int) -> None:
        """Write who holds the lock; text already there was left by a run that died holding it."""
        left = self._read(fd)
        if left.strip():
            self.note = f"took over the lock of an edgekd run that is gone ({_holder(left)})"
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
