"""The run directory: one folder per run, a manifest of finished stages, atomic writes.

A stage is recorded in ``manifest.json`` only after all its artifacts are on disk, and
every file is written to a temporary name and renamed, so a killed run never leaves a
half-written artifact that looks complete. ``--resume`` trusts a stage only when its
input hash matches and every artifact still has the hash recorded for it. A full disk is
a RunDirError naming the file, raised before the rename, so nothing half-written lands.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgekd.core.errors import RunDirError
from edgekd.core.runlock import LOCK_NAME, RunLock

MANIFEST_VERSION = 1
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_UMASK = os.umask(0)
os.umask(_UMASK)


def no_space_error(path: Path | str) -> RunDirError:
    """The one message for a full disk (or quota), whichever write ran into it."""
    return RunDirError(f"no space left on device writing {path}",
                       hint="free space on that disk, or set --output-dir to a folder on another disk, "
                       "then re-run with --resume")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise no_space_error(path) from None
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(path: Path) -> str:
    """Hash of a file, or of a directory's files (names and contents) in sorted order."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def hash_obj(obj: Any) -> str:
    """Stable hash of plain data (dict key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class RunDir:
    """``runs/<name>/``: stage folders plus ``manifest.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / "manifest.json"
        self.manifest: dict[str, Any] = {"schema_version": MANIFEST_VERSION, "stages": {}}
        self.lock = RunLock(self.root)

    # -- lifecycle -------------------------------------------------------------
    def open(self, *, resume: bool, force: bool) -> RunDir:
        """Create, resume or (with ``force``) wipe the run directory, holding its lock until
        ``close``: a folder another live run holds is never touched, not even by ``force``."""
        self._create()
        self.lock.acquire()
        try:
            exists = self.manifest_path.exists()
            if exists and force:
                self._wipe()
                exists = False
            if exists and not resume:
                done = ", ".join(self.load().manifest["stages"]) or "none"
                raise RunDirError(
                    f"{self.root} already holds a run (stages done: {done})",
                    hint="pass --resume to continue it, --force to start over, or --name to use another folder",
                )
            if exists:
                self.load()
                for stale in self.root.glob(".*.tmp"):  # a run killed while saving the manifest or config.yaml
                    stale.unlink(missing_ok=True)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Release the run folder's lock (the kernel does it too if the process dies)."""
        self.lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run folder {self.root}: {_why_not_created(self.root, exc)}",
                              hint="pass --output-dir (or set output_dir:) to a folder you can write to") from None

    def _wipe(self) -> None:
        """Delete everything but the lock file we hold (deleting it would let a second run in)."""
        for p in self.root.iterdir():
            if p.name == LOCK_NAME:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()

    def load(self) -> RunDir:
        try:
            data = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(
                f"cannot read {self.manifest_path}: {exc}",
                hint="pass --force to start the run over",
            ) from None
        if not isinstance(data, dict) or "stages" not in data:
            raise RunDirError(f"{self.manifest_path} is not an edgekd manifest", hint="pass --force")
        self.manifest = data
        return self

    def save(self) -> None:
        self.manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_json(self.manifest_path, self.manifest)

    # -- stages ------------------------------------------------------------------
    def stage_dir(self, stage: str, *, clean: bool = False) -> Path:
        d = self.root / stage
        if clean and d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def rel(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.root.resolve()))

    def record_stage(
        self,
        stage: str,
        *,
        input_hash: str,
        artifacts: dict[str, Path],
        metrics: dict[str, Any],
        seconds: float,
        device: str | None = None,
        world: dict[str, Any] | None = None,
        settings: Any = None,
        upstream: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Record a finished stage (hashing its artifacts) and save the manifest. ``settings``
        and ``upstream`` (what ``input_hash`` covers) let ``--resume`` say what changed."""
        self.manifest["stages"][stage] = {
            "status": "done",
            "input_hash": input_hash,
            "settings": json.loads(json.dumps(settings, default=str)),
            "upstream": {k: dict(v) for k, v in (upstream or {}).items()},  # a copy: the caller's grows
            "seconds": round(seconds, 3),
            "device": device,  # a resumed run may use another device: the report says which ran what
            "world": world,  # processes and backend under torchrun (training stages)
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "artifacts": {
                key: {"path": self.rel(p), "sha256": sha256_tree(p)} for key, p in artifacts.items()
            },
            "metrics": metrics,
        }
        self.save()

    def finished(self, stage: str, input_hash: str) -> dict[str, Any] | None:
        """The stage's record if it finished with these inputs and its files are intact."""
        rec = self.manifest["stages"].get(stage)
        if not rec or rec.get("status") != "done" or rec.get("input_hash") != input_hash:
            return None
        for art in rec["artifacts"].values():
            p = self.root / art["path"]
            if not p.exists() or sha256_tree(p) != art["sha256"]:
                return None
        return rec

    def forget(self, stage: str) -> None:
        if self.manifest["stages"].pop(stage, None) is not None:
            self.save()


def _why_not_created(root: Path, exc: OSError) -> str:
    """The reason a folder cannot be made, naming a file that sits where a folder should be."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        for parent in [root, *root.parents]:
            if parent.exists() and not parent.is_dir():
                return f"{parent} is a file, not a folder"
    return exc.strerror or str(exc)
