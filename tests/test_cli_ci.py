"""The CLI in CI: gate exit codes, a re-render that keeps the run's history, --version, -h,
--schema, and the lazy ``edgekd.api``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.core.errors import GateError
from edgekd.engines.reporting.schema import json_schema

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_copy(finished_run, tmp_path: Path) -> tuple[dict, Path]:
    """A private copy of the finished tiny run (its config pointing at the copy)."""
    cfg, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    return {**cfg, "output_dir": str(tmp_path)}, tmp_path / "tiny"


def _report(run: Path) -> dict:
    return json.loads((run / "report" / "report.json").read_text())


def test_report_gates_pass_and_fail_with_their_exit_codes(run_copy) -> None:
    _, run = run_copy
    r = runner.invoke(app, ["report", str(run), "--quiet", "--fail-under-accuracy", "1", "--fail-over-latency", "budget"])
    assert r.exit_code == 0, r.output
    gates = _report(run)["gates"]
    assert {(g["name"], g["target"], g["passed"]) for g in gates} == {("accuracy", "host", True), ("latency", "host", True),
                                                                      ("accuracy_floor", "host", True)}  # always on
    r = runner.invoke(app, ["report", str(run), "--fail-under-accuracy", "100", "--fail-over-latency", "0.0001"])
    assert r.exit_code == GateError.exit_code == 13, r.output
    out = " ".join(r.output.split())
    shipped = _report(run)["deployment"]["host"]["model"]  # the gates judge the file host ships
    assert f"error (gate): accuracy gate failed on host: {shipped}" in out and "latency gate failed on host" in out
    assert "FAILED: accuracy gate on host" in out  # the table is printed before the error
    gates = _report(run)["gates"]  # written before exiting
    assert [g["passed"] for g in gates] == [False, False, True] and gates[1]["threshold"] == 0.0001
    r = runner.invoke(app, ["report", str(run), "--fail-over-latency", "soon"])
    assert r.exit_code == 2 and "--fail-over-latency" in r.output


def test_compress_gate_on_a_resumed_run(run_copy, tmp_path: Path) -> None:
    cfg, run = run_copy
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = runner.invoke(app, ["compress", str(path), "--resume", "--quiet", "--fail-under-accuracy", "100"])
    assert r.exit_code == 13, r.output
    gate = _report(run)["gates"][0]
    assert gate["name"] == "accuracy" and not gate["passed"] and gate["value"] < 100
    r = runner.invoke(app, ["compress", str(path), "--resume", "--quiet", "--fail-under-accuracy", "0"])
    assert r.exit_code == 0, r.output


def test_report_rerender_keeps_the_runs_history(run_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the run recorded (its last compress command and which stages it resumed) survives
    re-renders. The session's finished run may have been resumed by an earlier test: the
    expectation is the run's own record, read before re-rendering."""
    _, run = run_copy
    original = json.loads((run / "manifest.json").read_text())["run"]
    assert original["command"].startswith("edgekd") and "report" not in original["command"].split()[:2]
    monkeypatch.setattr(sys, "argv", ["edgekd", "report", str(run), "--quiet"])  # what the command records
    for _ in range(2):
        r = runner.invoke(app, ["report", str(run), "--quiet"])
        assert r.exit_code == 0, r.output
    after = _report(run)
    assert after["command"] == original["command"]  # not "edgekd report ..."
    kept = {k: v for k, v in original["resumed"].items() if k in after["stages"]}  # report.json lists stages before report
    assert kept and {k: after["stages"][k]["resumed"] for k in kept} == kept
    assert [x["command"] for x in after["renders"]] == [f"edgekd report {run} --quiet"] * 2
    assert all(x["at"] for x in after["renders"])
    md = (run / "report" / "report.md").read_text()
    assert f"Command: `{original['command']}`" in md and "Re-rendered" in md


def test_version_and_short_help_on_every_command() -> None:
    from edgekd.core.version import __version__

    for flag in ("--version", "-V"):
        r = runner.invoke(app, [flag])
        assert r.exit_code == 0 and r.output.strip() == f"edgekd {__version__}"
    group = get_command(app)
    paths = [[name] for name in group.commands if name != "profiles"]
    paths += [["profiles", name] for name in group.commands["profiles"].commands]
    assert len(paths) >= 12
    for path in [*paths, ["profiles"], []]:
        r = runner.invoke(app, [*path, "-h"])
        assert r.exit_code == 0 and "Usage" in r.output, (path, r.output)


def test_schema_printed_and_committed_copy_is_current() -> None:
    r = runner.invoke(app, ["report", "--schema"])
    assert r.exit_code == 0
    printed = json.loads(r.stdout)
    assert printed == json_schema()
    assert {"gates", "renders", "choices", "latency"} <= set(printed["properties"])
    committed = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    assert committed == printed, "regenerate: python -m edgekd report --schema > docs/report.schema.json"


def test_report_json_validates_against_the_schema(finished_run) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    _, report, run = finished_run
    jsonschema.validate(_report(run), json_schema())
    assert report.choice("local") is report.choices["host"]  # host's alias


def test_api_is_an_attribute_of_the_package_without_importing_it() -> None:
    code = "import edgekd, sys; assert 'edgekd.api' not in sys.modules; print(edgekd.api.bench_file.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "bench_file"
