"""The bench stage's verdict on a finished run, re-benched several times: 3 fixed rounds against
rounds until stable (up to 9), alternating, and each pick judged against the budget the search
used and against the teacher timed in the same bench (the budget the report judges by).

    python benchmarks/bench_protocol.py --run /tmp/paysyn16/synthetic --pairs 3

The run folder is copied first (a re-bench rewrites its bench/ and report/). Sub-millisecond
files on a shared 2-core VM move by half between readings minutes apart: what matters is
whether the pick and its verdict hold, and how far apart the protocol's readings are.
Results: results/bench_protocol.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

RESULTS = Path(__file__).resolve().parent / "results"


def bench_once(run: Path, max_rounds: int) -> dict[str, Any]:
    """`edgekd bench RUN/config.yaml` with ``bench.max_rounds`` set explicitly (a --set is saved in
    the run's config, so every call says its own)."""
    cmd = [sys.executable, "-m", "edgekd", "bench", str(run / "config.yaml"), "--target", "host", "--quiet",
           "--json", "--set", f"bench.max_rounds={max_rounds}"]
    load = os.getloadavg()[0]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout)
    pick, host = r["deployment"]["host"], next(t for t in r["targets"] if t["name"] == "host")
    rows = {(x["model"], x["runtime"], x["precision"]): x for x in r["latency"]}
    return {"max_rounds": max_rounds, "load_before": round(load, 2),
            "pick": f"{pick['model']} {pick['runtime']} {pick['precision']}", "ms": pick["median_ms"],
            "speedup": pick["speedup_vs_teacher_best"], "budget_ms": host["latency_budget_ms"],
            "budget_ms_at_search": host.get("budget_ms_at_search"),
            "meets_rebased": pick["median_ms"] <= host["latency_budget_ms"],
            "meets_search_budget": pick["median_ms"] <= (host.get("budget_ms_at_search") or float("inf")),
            "unstable": pick.get("timings_unstable"),
            "rounds": {f"{m} {b} {pr}": x.get("round_medians_ms") for (m, b, pr), x in rows.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished run folder with bench in its stages")
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    trials = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / args.run.name
        shutil.copytree(args.run, run)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        cfg["output_dir"], cfg["name"] = tmp, run.name  # the copy, not the original
        (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        for i in range(args.pairs):
            for rounds in (3, 9):
                t = bench_once(run, rounds)
                trials.append(t)
                print(f"pair {i + 1}, max_rounds {rounds}: {t['pick']} {t['ms']:.3f} ms, {t['speedup']:.2f}x, "
                      f"budget {t['budget_ms']:.3f} ms (search: {t['budget_ms_at_search']}), "
                      f"meets {t['meets_rebased']} / {t['meets_search_budget']}, load {t['load_before']}", flush=True)
    summary = {n: sorted(t["speedup"] for t in trials if t["max_rounds"] == n) for n in (3, 9)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_protocol.json").write_text(json.dumps({"run": str(args.run), "trials": trials,
                                                             "speedups": summary}, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
