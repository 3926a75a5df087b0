"""Every bad input of benchmarks/bad_inputs.py gets its exit code and message, no traceback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bad_inputs", Path(__file__).resolve().parents[1] / "benchmarks" / "bad_inputs.py")
bad_inputs = importlib.util.module_from_spec(_spec)
sys.modules["bad_inputs"] = bad_inputs
_spec.loader.exec_module(bad_inputs)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else [])
                                  for c in bad_inputs.CASES])
def test_bad_input(case, tmp_path: Path) -> None:
    code, out, _ = bad_inputs.run_case(case, tmp_path, inprocess=not case.slow)
    assert bad_inputs.verdict(case, code, out) is None, out[-2000:]
