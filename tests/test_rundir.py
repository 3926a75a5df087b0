"""The run folder: folders that cannot be made, one run at a time (a lock), a full disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config
from typer.testing import CliRunner

from edgekd import cli
from edgekd.cli import app
from edgekd.core.errors import RunDirError
from edgekd.core.rundir import RunDir, atomic_write_bytes, atomic_write_text

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = os.name == "posix" and os.geteuid() == 0

# opens a run folder, says so, and holds it until killed: another edgekd run, as seen from this one
HOLD = ("import sys, time; from pathlib import Path; from edgekd.core.rundir import RunDir; "
        "RunDir(Path(sys.argv[1])).open(resume=True, force=False); print('locked', flush=True); time.sleep(120)")


def _compress(tmp_path: Path, *args: str) -> object:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    return runner.invoke(app, ["compress", str(cfg), "--quiet", *args])


@pytest.fixture(autouse=True)
def _wide_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages on one line: long temporary paths are not wrapped at 80 columns."""
    monkeypatch.setattr(cli.err, "_width", 1000)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """``mount(name, options)``: a real tmpfs (root only), unmounted afterwards."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", str(d)], check=False)


@pytest.fixture
def holder(tmp_path: Path):
    """Start a process that holds ``runs/tiny``; yields (process, run folder)."""
    procs = []

    def start(run: Path) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_output_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    r = _compress(tmp_path, "--output-dir", str(tmp_path / "afile" / "runs"))
    assert r.exit_code == 12, r.output
    assert f"cannot create the run folder {tmp_path / 'afile' / 'runs' / 'tiny'}" in r.output
    assert f"{tmp_path / 'afile'} is a file, not a folder" in r.output and "--output-dir" in r.output
    assert "Traceback" not in r.output


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_dir_under_proc(tmp_path: Path) -> None:
    r = _compress(tmp_path, "--output-dir", "/proc/edgekd-test/runs")
    assert r.exit_code == 12, r.output
    assert "cannot create the run folder /proc/edgekd-test/runs/tiny" in r.output


@pytest.mark.skipif(not IS_ROOT, reason="mounting needs root")
def test_output_dir_on_a_read_only_mount(tmp_path: Path, tmpfs) -> None:
    ro = tmpfs("ro", "ro,size=1m")
    r = _compress(tmp_path, "--output-dir", str(ro / "runs"))
    assert r.exit_code == 12, r.output
    assert f"cannot create the run folder {ro / 'runs' / 'tiny'}: Read-only file system" in r.output


@pytest.mark.skipif(os.name != "posix" or IS_ROOT, reason="root ignores folder permissions")
def test_output_dir_read_only(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = _compress(tmp_path, "--output-dir", str(ro / "runs"))
    finally:
        ro.chmod(0o755)
    assert r.exit_code == 12, r.output
    assert f"cannot create the run folder {ro / 'runs' / 'tiny'}: Permission denied" in r.output


def test_second_run_on_a_locked_folder_is_refused(tmp_path: Path, holder) -> None:
    run = tmp_path / "runs" / "tiny"
    proc = holder(run)
    (run / "keep.txt").write_text("the other run's file")
    r = _compress(tmp_path)
    assert r.exit_code == 12, r.output
    assert f"{run} is in use by another edgekd run (pid {proc.pid} on " in r.output and "--name" in r.output
    r = _compress(tmp_path, "--force")  # --force must not wipe a folder a live run holds
    assert r.exit_code == 12 and "in use by another edgekd run" in r.output
    assert (run / "keep.txt").read_text() == "the other run's file"


def test_lock_of_a_killed_run_is_taken_over(tmp_path: Path, holder) -> None:
    run = tmp_path / "tiny"
    proc = holder(run)
    with pytest.raises(RunDirError, match="in use by another edgekd run"):
        RunDir(run).open(resume=True, force=False)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run / ".lock").read_text())["pid"] == proc.pid  # left behind by kill -9
    with RunDir(run).open(resume=True, force=False) as rd:
        assert rd.lock.note and f"pid {proc.pid}" in rd.lock.note
        assert json.loads((run / ".lock").read_text())["pid"] == os.getpid()
    assert not (run / ".lock").exists()  # released on close
    with RunDir(run).open(resume=True, force=False) as rd:
        assert rd.lock.note is None  # a cleanly released lock is no news


def test_lock_released_after_a_failed_open(tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    with RunDir(run).open(resume=False, force=False) as rd:
        rd.save()
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDir(run).open(resume=False, force=False)
    assert not (run / ".lock").exists()
    with RunDir(run).open(resume=False, force=True) as rd:  # --force wipes all but the lock it holds
        assert (run / ".lock").exists() and not rd.manifest_path.exists()


def test_full_disk_in_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out" / "report.json"
    atomic_write_text(target, "old")

    def full(self: Path, *a: object, **k: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(RunDirError, match=f"no space left on device writing {target}") as exc:
        atomic_write_text(target, "new")
    assert "--output-dir" in (exc.value.hint or "") and "--resume" in (exc.value.hint or "")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["report.json"]


@pytest.mark.skipif(not IS_ROOT, reason="mounting needs root")
def test_full_disk_for_real(tmpfs) -> None:
    small = tmpfs("small", "size=1m")
    with pytest.raises(RunDirError, match=f"no space left on device writing {small / 'export' / 'big.onnx'}"):
        atomic_write_bytes(small / "export" / "big.onnx", b"x" * (2 << 20))
    assert list((small / "export").iterdir()) == []  # no half-written temporary file left behind


def test_full_disk_during_onnx_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter's catch-all does not turn a full disk into an export failure (exit 8)."""
    import torch

    from edgekd.engines.exporters.onnx_io import export_onnx

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch.onnx, "export", full)
    with pytest.raises(RunDirError, match="no space left on device writing .*student.onnx"):
        export_onnx(torch.nn.Linear(4, 2), torch.zeros(1, 4), tmp_path / "student.onnx", 17)


def test_full_disk_during_report_leaves_the_manifest(finished_run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, run = finished_run
    copy = tmp_path / "tiny"
    shutil.copytree(run, copy)
    manifest = copy / "manifest.json"
    at_failure = {}
    real_write = Path.write_text

    def full_disk(self: Path, data: str, *a: object, **k: object) -> int:
        if self.name.startswith(".report.json."):  # atomic_write_text's temporary file for report.json
            at_failure["manifest"] = manifest.read_bytes()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data, *a, **k)

    monkeypatch.setattr(Path, "write_text", full_disk)
    r = runner.invoke(app, ["report", str(copy), "--quiet"])
    assert r.exit_code == 12, r.output
    assert f"no space left on device writing {copy / 'report' / 'report.json'}" in r.output
    assert "--output-dir" in r.output and "--resume" in r.output and "Traceback" not in r.output
    assert manifest.read_bytes() == at_failure["manifest"]  # nothing written to it after the failed write
    assert "report" not in json.loads(manifest.read_text())["stages"]
    assert not (copy / "report" / "report.json").exists()
