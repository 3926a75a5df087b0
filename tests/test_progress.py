"""Progress where no terminal is: plain flushed lines per stage and per epoch (CI logs, `| tee`),
bars on a terminal, nothing with --quiet; NNCF's own output folded into one edgekd line."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import tiny_config
from rich.console import Console

from edgekd.core.progress import Reporter

ROOT = Path(__file__).resolve().parents[1]
EPOCH = re.compile(r"^teacher: teacher resnet18 d1-1-1-1 w16 epoch (\d)/3 loss \d+\.\d{4} val \d+\.\d\d% elapsed \d+\.\d s$")


def _config(tmp_path: Path) -> Path:
    cfg = tiny_config(tmp_path, stages=["distill"], threads=1)
    cfg["teacher"]["train"]["epochs"] = 3
    cfg["distill"]["epochs"] = 1
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _edgekd(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "60"}  # a narrow "terminal": lines must not wrap in the log anyway
    return subprocess.Popen([sys.executable, "-m", "edgekd", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=ROOT)


def test_a_piped_run_prints_a_flushed_line_per_stage_and_epoch(tmp_path: Path) -> None:
    proc = _edgekd("compress", str(_config(tmp_path)), "--target", "host")
    lines, running_at_first_epoch = [], None
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if running_at_first_epoch is None and EPOCH.match(lines[-1]):
            running_at_first_epoch = proc.poll() is None  # flushed as it happened, not at exit
    assert proc.wait(timeout=300) == 0, "\n".join(lines)
    assert running_at_first_epoch, "\n".join(lines)
    assert [int(m.group(1)) for m in map(EPOCH.match, lines) if m] == [1, 2, 3]
    assert any(re.fullmatch(r"teacher: started at \d\d:\d\d:\d\d", x) for x in lines)
    assert any(re.fullmatch(r"teacher: done in \d+\.\d s", x) for x in lines)
    assert any(re.fullmatch(r"distill: distill resnet18 d1-1-1-1 w8 epoch 1/1 loss .* elapsed .*", x) for x in lines)
    assert any(re.fullmatch(r"distill: done in \d+\.\d s", x) for x in lines)
    progress = lines[: next(i for i, x in enumerate(lines) if x.startswith("edgekd · tiny"))]  # before the table
    assert not any("━" in x or "\x1b[" in x for x in progress)  # no bars, no colour codes in a log

    quiet = _edgekd("compress", str(_config(tmp_path)), "--target", "host", "--quiet", "--force")
    out, _ = quiet.communicate(timeout=300)
    assert quiet.returncode == 0, out
    assert "epoch" not in out and "started" not in out


def test_reporter_draws_bars_on_a_terminal_and_lines_elsewhere() -> None:
    log = io.StringIO()
    r = Reporter(console=Console(file=log, width=40))
    r.stage_started("distill")
    with r.task("distill [x]", total=2) as advance:
        advance(1, status="[red]half")
        r.epoch("distill [x]", 1, 2, loss=0.5, accuracy=90.0, elapsed=1.25)
    r.stage_done("distill", 2.0)
    assert log.getvalue().splitlines()[1:] == ["distill: distill [x] epoch 1/2 loss 0.5000 val 90.00% elapsed 1.2 s",
                                               "distill: done in 2.0 s"]
    tty = io.StringIO()
    r = Reporter(console=Console(file=tty, force_terminal=True, width=80))
    r.stage_started("distill")
    with r.task("distill [x]", total=2) as advance:  # markup in a label or status is text, not a style
        advance(1, status="[red]half")
        r.epoch("distill", 1, 2, loss=0.5, accuracy=90.0, elapsed=1.0)
    assert "epoch 1/2" not in tty.getvalue() and "started" not in tty.getvalue()
    quiet = io.StringIO()
    r = Reporter(quiet=True, console=Console(file=quiet))
    r.stage_started("distill")
    r.epoch("distill", 1, 2, loss=0.5, accuracy=90.0, elapsed=1.0)
    assert quiet.getvalue() == ""


def test_nncf_output_is_folded_into_the_calibration_count(capfd) -> None:
    import torch

    from edgekd.engines.models.build import build_model
    from edgekd.engines.quantization.nncf_int8 import CalibrationLog, calibration_batches, quantize

    model = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]})
    calib = calibration_batches(torch.randn(150, 3, 16, 16), 150)  # 64 + 64 + 22 images
    log = CalibrationLog()
    t0 = time.perf_counter()
    quantize(model.eval(), calib, symmetric=False, per_channel=True, ignored=[], log_to=log)
    assert (log.images, log.batches) == (150, 3) and 0 < log.seconds <= time.perf_counter() - t0
    out, err = capfd.readouterr()
    assert "Statistics collection" not in out + err and "Fast Bias correction" not in out + err  # NNCF's bars
    assert "smaller than the requested subset size" not in out + err and log.warnings == []
