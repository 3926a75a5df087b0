"""Racing the student sources against training all of them to the end, over seeds.

For each seed the config runs search + distill with every student run trained to the end
(distill.race: null); then distill runs again on a copy of that run folder with the race at its
default rule (distill.race: {}). Both distills start from the same search result and the same
budgets, and the teacher pruned to the budget is cut on the same (cached) timings, so the race
is the only difference. It reports how often the race ships the same source and kind (with or
without the teacher) as the full run, both accuracies, the epochs trained (in units of one run:
what distill's training costs against one KD training of the shipped student) and the wall times.

    python benchmarks/race.py --case digits --seeds 0 1 2 3 4
    python benchmarks/race.py --case synthetic --seeds 0 1 2 3 4

``synthetic`` is the generated hard set at a size that runs in minutes on 2 cores (6 000 / 2 000
images, teacher 15 epochs, distill 10). ``synthetic-augmented`` is the same with distill's
default augmentation (random shifts: the teacher runs on every batch, as with real data), one
teacher for all seeds (trained with seed 0), and also times one KD training of the shipped
student alone at the same epochs: what distill's wall time is compared with.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import edgekd
import edgekd.api
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
    if case.startswith("synthetic"):
        cfg = {**cfg, **copy.deepcopy(SYNTHETIC), "name": "synthetic"}
    if case == "synthetic-augmented":  # distill's default augmentation: the teacher runs on every batch
        cfg["distill"] = {k: v for k, v in cfg["distill"].items() if k != "augment"}
    cfg["seed"] = seed
    cfg["stages"] = ["search", "distill"]
    cfg["output_dir"] = str(work)
    own = seed if case != "synthetic-augmented" else 0  # one teacher there: the seed varies search, students, race
    cfg["teacher"] = {**cfg["teacher"], "checkpoint": str(work / f"teacher-seed{own}.safetensors")}
    return cfg


def distill_facts(run: Path) -> dict[str, Any]:
    rec = json.loads((run / "manifest.json").read_text())["stages"]["distill"]
    m = rec["metrics"]
    epochs = len(m["history"]) if m.get("history") else 0
    per_run = (m.get("race") or {}).get("curves")
    runs = len(m.get("sources") or {}) * (2 if m.get("baseline") else 1)
    cfg_epochs = json.loads((run / "manifest.json").read_text())["stages"]["distill"]["settings"]["distill"]["epochs"]
    trained = sum(len(c) for c in per_run.values()) if per_run else runs * cfg_epochs
    return {"source": m["source"], "shipped": m["shipped"], "accuracy": m["accuracy"],
            "distill_seconds": rec["seconds"], "runs": runs, "epochs_trained": trained,
            "one_run_equivalents": round(trained / cfg_epochs, 2), "last_epoch_of_shipped": epochs,
            "stopped": (m.get("race") or {}).get("stopped", {}),
            "sources": {k: {"accuracy": v.get("accuracy"), "plain_accuracy": v.get("plain_accuracy")}
                        for k, v in (m.get("sources") or {}).items()}}


def one_kd_training(run: Path, cfg: dict[str, Any]) -> float:
    """Seconds of one KD training of the shipped student (its architecture, from a fresh copy of
    the shipped weights) at distill's epochs and settings, alone, as distill trains it."""
    from edgekd.core.config import Config
    from edgekd.engines.data import load_data
    from edgekd.engines.models.artifact import load_model
    from edgekd.engines.models.build import build_model
    from edgekd.engines.models.checkpoint import load_weights
    from edgekd.engines.train.teacher_memo import TeacherMemo
    from edgekd.engines.train.trainer import train

    conf = Config(**{k: v for k, v in cfg.items() if k != "output_dir"})
    data = load_data(conf.data)
    teacher = build_model(conf.teacher.model, data.num_classes, conf.teacher.kwargs)
    load_weights(teacher, Path(conf.teacher.checkpoint), num_classes=data.num_classes)
    student, _ = load_model(run / "distill" / "model")
    dcfg = conf.distill.model_copy(update={"race": None})
    t0 = time.perf_counter()
    train(student, data, dcfg, teacher=teacher.eval(), seed=conf.seed, memo=TeacherMemo())
    return time.perf_counter() - t0


def seed_pair(cfg: dict[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(full, race) for one seed: the full run, then distill alone again on a copy of it, raced."""
    work = Path(cfg["output_dir"])
    full_cfg = copy.deepcopy(cfg)
    full_cfg["distill"] = {**cfg["distill"], "race": None}
    edgekd.compress(full_cfg, ["host"], quiet=True, name=f"full-seed{seed}", force=True)
    race_dir = work / f"race-seed{seed}"
    shutil.rmtree(race_dir, ignore_errors=True)
    shutil.copytree(work / f"full-seed{seed}", race_dir)
    race_cfg = copy.deepcopy(cfg)
    race_cfg["distill"] = {**cfg["distill"], "race": {}}  # {}: the default rule
    edgekd.api.run_stage("distill", race_cfg, ["host"], quiet=True, name=f"race-seed{seed}")
    race = distill_facts(race_dir)
    race["one_kd_training_s"] = round(one_kd_training(race_dir, race_cfg), 1)
    race["distill_over_one_kd"] = round(race["distill_seconds"] / race["one_kd_training_s"], 2)
    return distill_facts(work / f"full-seed{seed}"), race


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["digits", "synthetic", "synthetic-augmented"], default="digits")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--workdir", type=Path, default=HERE / ".cache" / "race")
    args = ap.parse_args()
    work = args.workdir / args.case
    rows = []
    for seed in args.seeds:
        cfg = config(args.case, seed, work)
        full, race = seed_pair(cfg, seed)
        same = (race["source"], race["shipped"]) == (full["source"], full["shipped"])
        rows.append({"seed": seed, "race": race, "full": full, "same_choice": same})
        print(f"seed {seed}: full {full['source']}/{full['shipped']} {full['accuracy']:.2f}% "
              f"{full['one_run_equivalents']:g} runs {full['distill_seconds']:.0f} s | race {race['source']}/"
              f"{race['shipped']} {race['accuracy']:.2f}% {race['one_run_equivalents']:g} runs "
              f"{race['distill_seconds']:.0f} s ({race['distill_over_one_kd']:g}x one KD training) | same: {same}",
              flush=True)
    summary = {"case": args.case, "seeds": args.seeds, "same_choice": sum(r["same_choice"] for r in rows),
               "race_distill_s_median": statistics.median(r["race"]["distill_seconds"] for r in rows),
               "full_distill_s_median": statistics.median(r["full"]["distill_seconds"] for r in rows),
               "race_one_run_equivalents_median": statistics.median(r["race"]["one_run_equivalents"] for r in rows),
               "full_one_run_equivalents_median": statistics.median(r["full"]["one_run_equivalents"] for r in rows),
               "race_over_one_kd_median": statistics.median(r["race"]["distill_over_one_kd"] for r in rows),
               "accuracy_race_minus_full": [round(r["race"]["accuracy"] - r["full"]["accuracy"], 3) for r in rows]}
    out = HERE / "results" / f"race_{args.case}.json"
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print("\n| seed | full: source / kind | full acc | full runs (epochs in runs) | full distill s | "
          "race: source / kind | race acc | race epochs in runs | race distill s | same |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["race"], r["full"]
        print(f"| {r['seed']} | {b['source']} / {b['shipped']} | {b['accuracy']:.2f}% | {b['runs']} "
              f"({b['one_run_equivalents']:g}) | {b['distill_seconds']:.0f} | {a['source']} / {a['shipped']} | "
              f"{a['accuracy']:.2f}% | {a['one_run_equivalents']:g} | {a['distill_seconds']:.0f} | "
              f"{'yes' if r['same_choice'] else 'no'} |")
    print(f"\n{json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
