"""The demo end to end from the command line, timed: how long a new user waits, and what
the report says (accuracies, and latency measured side by side in one run).

    python benchmarks/pipeline_digits.py

Runs `edgekd compress examples/digits.yaml --target host` twice: with the spine stages
only (teacher, distill, export, bench, report) and with all seven stages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

ROOT = common.HERE.parent
SPINE = ["--set", "stages=[distill, export, bench, report]", "--set", "student={model: mobilenetv3_small_050}"]


def run(extra: list[str], out: Path, name: str) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "edgekd", "compress", "examples/digits.yaml", "--target", "host", "--quiet",
           "--output-dir", str(out), "--name", name, *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    seconds = time.perf_counter() - t0
    return seconds, json.loads((out / name / "report" / "report.json").read_text())


def summary(rep: dict) -> dict:
    models = {m["label"]: m for m in rep["models"]}
    lat = {(r["model"], r["runtime"], r["precision"]): r["median_ms"] for r in rep["latency"] if r["target"] == "host"}
    return {"accuracy": {k: m["accuracy"] for k, m in models.items()},
            "runtime_accuracy": {k: m["runtime_accuracy"] for k, m in models.items()},
            "latency_ms": {" ".join(k): v for k, v in lat.items()}, "speedups": rep["speedups"],
            "stage_seconds": {k: v["seconds"] for k, v in rep["stages"].items()}}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spine_s, spine = run(SPINE, Path(tmp), "digits-spine")
        full_s, full = run([], Path(tmp), "digits-full")
    res = {"spine": {"wall_seconds": round(spine_s, 1), **summary(spine)},
           "full": {"wall_seconds": round(full_s, 1), **summary(full), "search": full["search"].get("chosen")}}
    path = common.save("pipeline_digits", res)
    for k in ("spine", "full"):
        r = res[k]
        acc = r["accuracy"]
        st = r["speedups"].get("student", {})
        print(f"{k}: {r['wall_seconds']:.0f} s wall · accuracy {acc} · student best "
              f"{st.get('best_median_ms')} ms ({st.get('best_runtime')}), {st.get('speedup_vs_teacher_eager')}× vs "
              f"teacher eager, {st.get('speedup_vs_teacher_best')}× vs teacher's best")
    print(path)


if __name__ == "__main__":
    main()
