"""Re-rendering a finished run's report, with device-kit measurements merged in.

``edgekd report RUN --import results.json``: the kit's JSON (same latency-record schema,
labelled measured on the named target) is copied into ``RUN/imports/``; the bench and
report stages then run again on top of the finished run, so the imported numbers appear
beside the host measurements and the predictions, and choices use them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgekd.core.devicekit import read_kit_results
from edgekd.core.errors import ConfigError, RunDirError

REQUIRED = ("model", "runtime", "format", "precision", "batch_size", "target", "median_ms")


def import_results(run_dir: Path, files: list[Path]) -> list[str]:
    """Validate and copy kit result files into ``run_dir/imports``; returns the targets they cover."""
    if not (run_dir / "manifest.json").exists():
        raise RunDirError(f"{run_dir} is not an edgekd run (no manifest.json)", hint="pass the run folder, e.g. runs/digits")
    targets = []
    dest = run_dir / "imports"
    dest.mkdir(exist_ok=True)
    for f in files:
        doc = read_kit_results(f)
        for i, r in enumerate(doc.get("results", [])):
            missing = [k for k in REQUIRED if k not in r]
            if missing:
                raise ConfigError(f"{f}: result {i} lacks {missing}")
        targets.append(doc.get("target"))
        shutil.copy2(f, dest / f"{doc.get('target', 'device')}-{Path(f).name}")
    return targets
