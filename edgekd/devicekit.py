"""Access to the device kit (top-level ``export/edgekd_kit.py``) from edgekd itself.

The kit is one self-contained file that runs on the target without torch or edgekd; the
TensorRT engine building and running live there once, and edgekd reuses them when
TensorRT happens to be installed where edgekd runs (e.g. on a Jetson).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

KIT_NAME = "edgekd_kit.py"


def kit_path() -> Path:
    """The kit file: the source checkout's ``export/`` or the copy shipped in the wheel."""
    pkg = Path(__file__).resolve().parent
    for p in (pkg.parent / "export" / KIT_NAME, pkg / "_device_kit" / KIT_NAME):
        if p.exists():
            return p
    raise FileNotFoundError(f"{KIT_NAME} not found next to the edgekd package")


@cache
def load_kit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("edgekd_kit", kit_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
