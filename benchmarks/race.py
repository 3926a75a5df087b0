"""Racing the student sources against training all of them to the end, over seeds.

For each seed, the same config runs search + distill twice in one process, the teacher trained
once and reused: with the default race (distill.race) and with every run trained to the end
(distill.race: null). It reports how often the race ships the same source (and the same kind:
with or without the teacher) as the full run, both accuracies, and distill's wall time against
one KD training of the shipped student at the same epochs.

    python benchmarks/race.py --case digits --seeds 0 1 2 3 4
    python benchmarks/race.py --case synthetic --seeds 0 1 2 3 4

``synthetic`` is the generated hard set at a size that runs in minutes on 2 cores (6 000 / 2 000
images, teacher 15 epochs, distill 10); its teacher lands in the 80s.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import edgekd
from edgekd.core.config_file import read_yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYNTHETIC = {
    "data": {"source": "synthetic", "image_size": 32, "num_classes": 10, "train_size": 6000, "val_size": 2000,
             "difficulty": 0.5},
    "teacher": {"model": "resnet18", "kwargs": {"channels": [32, 64, 128, 256]},
                "train": {"epochs": 15, "batch_size": 128, "optimizer": {"lr": 0.1}, "schedule": {"warmup_epochs": 1}}},
    "distill": {"epochs": 10, "batch_size": 128, "augment": {"shift": 0}},
}


def config(case: str, seed: int, work: Path) -> dict[str, Any]:
    cfg = read_yaml(ROOT / "examples" / "digits.yaml")
    if case == "synthetic":
        cfg = {**cfg, **copy.deepcopy(SYNTHETIC), "name": "synthetic"}
    cfg["seed"] = seed
    cfg["stages"] = ["search", "distill"]
    cfg["output_dir"] = str(work)
    cfg["teacher"] = {**cfg["teacher"], "checkpoint": str(work / f"teacher-seed{seed}.safetensors")}
    return cfg


def one(cfg: dict[str, Any], name: str, race: bool) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    cfg["distill"] = {**cfg["distill"], "race": {} if race else None}  # {}: the default rule
    t0 = time.perf_counter()
    edgekd.compress(cfg, ["host"], quiet=True, name=name, force=True)
    wall = time.perf_counter() - t0
    run = Path(cfg["output_dir"]) / name
    rec = json.loads((run / "manifest.json").read_text())["stages"]["distill"]
    m = rec["metrics"]
    kd = m["kd"] if m.get("shipped") == "plain" and m.get("kd") else m
    return {"source": m["source"], "shipped": m["shipped"], "accuracy": m["accuracy"],
            "distill_seconds": rec["seconds"], "kd_train_seconds": kd.get("train_seconds"),
            "stopped": (m.get("race") or {}).get("stopped", {}), "wall": round(wall, 1),
            "sources": {k: {"accuracy": v.get("accuracy"), "plain_accuracy": v.get("plain_accuracy")}
                        for k, v in (m.get("sources") or {}).items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["digits", "synthetic"], default="digits")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--workdir", type=Path, default=HERE / ".cache" / "race")
    args = ap.parse_args()
    work = args.workdir / args.case
    rows = []
    for seed in args.seeds:
        cfg = config(args.case, seed, work)
        race = one(cfg, f"race-seed{seed}", race=True)
        full = one(cfg, f"full-seed{seed}", race=False)
        same = (race["source"], race["shipped"]) == (full["source"], full["shipped"])
        rows.append({"seed": seed, "race": race, "full": full, "same_choice": same})
        print(f"seed {seed}: race {race['source']}/{race['shipped']} {race['accuracy']:.2f}% "
              f"{race['distill_seconds']:.0f} s | full {full['source']}/{full['shipped']} {full['accuracy']:.2f}% "
              f"{full['distill_seconds']:.0f} s | same: {same}", flush=True)
    ratio = [r["race"]["distill_seconds"] / r["full"]["kd_train_seconds"] for r in rows if r["full"]["kd_train_seconds"]]
    summary = {"case": args.case, "seeds": args.seeds, "same_choice": sum(r["same_choice"] for r in rows),
               "race_distill_s_median": statistics.median(r["race"]["distill_seconds"] for r in rows),
               "full_distill_s_median": statistics.median(r["full"]["distill_seconds"] for r in rows),
               "race_over_one_kd_training_median": round(statistics.median(ratio), 2) if ratio else None,
               "accuracy_race_minus_full": [round(r["race"]["accuracy"] - r["full"]["accuracy"], 3) for r in rows]}
    out = HERE / "results" / f"race_{args.case}.json"
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print("\n| seed | race: source / kind | race acc | race distill s | full: source / kind | full acc | "
          "full distill s | same |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["race"], r["full"]
        print(f"| {r['seed']} | {a['source']} / {a['shipped']} | {a['accuracy']:.2f}% | {a['distill_seconds']:.0f} | "
              f"{b['source']} / {b['shipped']} | {b['accuracy']:.2f}% | {b['distill_seconds']:.0f} | "
              f"{'yes' if r['same_choice'] else 'no'} |")
    print(f"\n{json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
