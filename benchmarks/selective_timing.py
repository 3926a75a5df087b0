"""Does timing only what can change the choice keep the pick? Selective against exhaustive timing.

For each teacher family, set of targets and seed, the search stage runs twice on one fresh
timing cache: first with ``search.timing: selective`` (the default), then with ``all``. The
exhaustive run reads the timings the selective one took from the cache and times the rest, so
both decide on the same number for every candidate the selective run timed: a different pick
can only come from a candidate the prediction ruled out, or left out of the evolution, that
timing would have let in. Reports how often the picks (and the other-family picks of a mixed
space) agree, how many candidates each timed, and the search's seconds.

    python benchmarks/selective_timing.py --seeds 0 1 2 3 4

Cases: digits' ResNet-18 teacher (192 ResNets, enumerated); a MobileNetV3 teacher
(MobileNetV3 + EfficientNet space, evolution); the digits ViT teacher (ViT + ResNet space,
evolution). Targets: host alone, and host with a Raspberry Pi 5 and a Jetson Orin Nano
(predicted). The teacher is not trained: the search scores its architecture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import edgekd
from edgekd.core.config_file import read_yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = {
    "resnet": {},
    "mobilenet": {"teacher": {"model": "mobilenetv3_large_100"}, "search": {}},
    "vit": "vit_digits.yaml",
}
TARGETS = {"host": ["host"], "host+pi+jetson": ["host", "raspberry-pi-5", "jetson-orin-nano"]}


def config(case: str, seed: int, work: Path, timing: str) -> dict[str, Any]:
    spec = CASES[case]
    cfg = read_yaml(ROOT / "examples" / (spec if isinstance(spec, str) else "digits.yaml"))
    if isinstance(spec, dict) and "teacher" in spec:
        cfg["teacher"] = {**spec["teacher"], "train": cfg["teacher"]["train"]}
        cfg["search"] = dict(spec["search"])  # the space follows the teacher's family
    cfg.update(seed=seed, stages=["search"], output_dir=str(work), name=f"{case}-{seed}-{timing}")
    cfg["search"] = {**cfg.get("search", {}), "timing": timing}
    return cfg


def one(case: str, targets: list[str], seed: int, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"case": case, "targets": targets, "seed": seed}
    for timing in ("selective", "all"):
        t0 = time.perf_counter()
        edgekd.compress(config(case, seed, work, timing), targets, quiet=True, force=True)
        wall = time.perf_counter() - t0
        m = json.loads((work / f"{case}-{seed}-{timing}" / "manifest.json").read_text())["stages"]["search"]["metrics"]
        cands = json.loads((work / f"{case}-{seed}-{timing}" / "search" / "candidates.json").read_text())
        timed = sum(any(e.get("kind") == "measured" and t == "host" for t, e in c["latency"].items()) for c in cands)
        out[timing] = {"pick": m["chosen"]["key"], "alternatives": [a["key"] for a in m["chosen"]["alternatives"]],
                       "timed": timed, "evaluated": m["evaluated"], "search_s": m["seconds"], "wall_s": round(wall, 1),
                       "fit": m.get("timing", {}).get("fit")}
    out["same_pick"] = out["selective"]["pick"] == out["all"]["pick"]
    out["same_alternatives"] = out["selective"]["alternatives"] == out["all"]["alternatives"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    ap.add_argument("--out", default=str(HERE / "results" / "selective_timing.json"))
    args = ap.parse_args()
    rows = []
    for case in args.cases:
        for tname in args.targets:
            for seed in args.seeds:
                work = Path(tempfile.mkdtemp(prefix="selective-"))
                os.environ["EDGEKD_CACHE_DIR"] = str(work / "cache")  # fresh per pair: nothing from another seed
                try:
                    row = one(case, TARGETS[tname], seed, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                row["target_set"] = tname
                rows.append(row)
                s, a = row["selective"], row["all"]
                print(f"{case:9} {tname:15} seed {seed}: same pick {row['same_pick']!s:5} alternatives "
                      f"{row['same_alternatives']!s:5} timed {s['timed']:3}/{a['timed']:3} search {s['search_s']:6.1f} s "
                      f"/ {a['search_s']:6.1f} s  {s['pick']}", flush=True)
                Path(args.out).write_text(json.dumps(rows, indent=1))
    print("\n| teacher | targets | same pick | same other-family picks | timed on host (selective / all, median) "
          "| search s (selective / all, median) |\n|---|---|---|---|---|---|")
    for case in args.cases:
        for tname in args.targets:
            rs = [r for r in rows if r["case"] == case and r["target_set"] == tname]
            med = lambda k, f, rs=rs: statistics.median(r[k][f] for r in rs)  # noqa: E731
            print(f"| {case} | {tname} | {sum(r['same_pick'] for r in rs)} of {len(rs)} | "
                  f"{sum(r['same_alternatives'] for r in rs)} of {len(rs)} | {med('selective', 'timed'):.0f} / "
                  f"{med('all', 'timed'):.0f} | {med('selective', 'search_s'):.1f} / {med('all', 'search_s'):.1f} |")


if __name__ == "__main__":
    main()
