"""Access to the device kit (top-level ``export/edgekd_kit.py``) from edgekd itself.

The kit is one self-contained file that runs on the target without torch or edgekd; the
TensorRT engine building and running live there once, and edgekd reuses them when
TensorRT happens to be installed where edgekd runs (e.g. on a Jetson). Its results JSON
is read back here, for ``edgekd report --import`` and ``edgekd profiles calibrate --from``.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from edgekd.core.errors import ConfigError, EdgeKDError
from edgekd.core.estimates import renamed

KIT_NAME = "edgekd_kit.py"
KIT_SCHEMA = "edgekd-kit-results/2"  # what the kit's SCHEMA says (a test keeps the two equal)


def kit_path() -> Path:
    """The kit file: the source checkout's ``export/`` or the copy shipped in the wheel."""
    pkg = Path(__file__).resolve().parents[1]  # edgekd/
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


def read_kit_results(path: Path, error: type[EdgeKDError] = ConfigError) -> dict[str, Any]:
    """A kit results file of the schema this edgekd reads; else ``error`` saying which it is."""
    rerun = "produce it with `python3 edgekd_kit.py bench-dir . --target <name> --out results.json`"
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"cannot read device-kit results {path}: {exc}", hint=rerun) from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    family, _, ours = KIT_SCHEMA.rpartition("/")
    if schema == f"{family}/1" and isinstance(doc.get("results", []), list):  # a kit from before the renaming
        doc["results"] = renamed(doc["results"])
        schema = doc["schema"] = KIT_SCHEMA
    if isinstance(schema, str) and schema.startswith(f"{family}/") and schema != KIT_SCHEMA:
        theirs = schema.rpartition("/")[2]
        raise error(f"{path} was written by device kit schema {theirs}; this edgekd reads schema {ours}",
                    hint="re-run the kit that ships in this run's export folder (runs/<name>/export/edgekd_kit.py) "
                    "on the device, or use the edgekd version whose export folder held the kit that wrote it")
    if schema != KIT_SCHEMA or not isinstance(doc.get("results", []), list):
        raise error(f"{path} is not device-kit output (schema {KIT_SCHEMA!r} expected)", hint=rerun)
    return doc
