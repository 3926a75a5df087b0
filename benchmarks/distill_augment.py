"""Does augmentation in distill close the students' gap on the hard synthetic set?

    python benchmarks/distill_augment.py --teacher /tmp/paysyn64/synthetic-teacher.safetensors --shift 0 2 --epochs 15

The teacher is the full-width ResNet-18 that `benchmarks/pays.py --case synthetic` trains
(examples/synthetic.yaml; the file it leaves in its workdir). The student is the searched one
of that run, ResNet (2,1,1,2) w32, distilled with the example's loss (KL, T 4, α 0.9) and the
trainer's default optimizer, seed 0, for ``--epochs`` (15: the setting the recorded figures
use; the example itself distils for as long as its teacher trains). Only ``augment.shift``
differs: 0 computes the teacher's logits once, 2 is what the teacher trained with and the
default (the teacher runs on every shifted batch). One process per setting, one thread each, side by
side. Results: results/distill_augment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLE = ROOT / "examples" / "synthetic.yaml"  # its data, teacher architecture and distill loss


def _worker(teacher_path: str, shift: int, epochs: int) -> None:
    import torch

    from edgekd.core.config import DataConfig, LossTerm, TrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.models.build import build_model
    from edgekd.engines.models.checkpoint import read_state_dict
    from edgekd.engines.train.trainer import train

    torch.set_num_threads(1)
    ex = yaml.safe_load(EXAMPLE.read_text())
    data = load_data(DataConfig(**ex["data"]))
    teacher = build_model(ex["teacher"]["model"], data.num_classes, ex["teacher"].get("kwargs", {}))
    teacher.load_state_dict(read_state_dict(teacher_path))
    torch.manual_seed(0)
    student = build_model("resnet18", data.num_classes, {"layers": [2, 1, 1, 2], "channels": [32, 64, 128, 256]})
    cfg = TrainConfig(epochs=epochs, batch_size=128, augment={"shift": shift},
                      loss=[LossTerm(**t) for t in ex["distill"]["loss"]])
    t = time.time()
    r = train(student, data, cfg, teacher=teacher.eval(), seed=0)
    print(json.dumps({"shift": shift, "epochs": epochs, "best": r.best_accuracy, "curve": [h["val_accuracy"] for h in r.history],
                      "train_loss": [h["train_loss"] for h in r.history], "seconds": round(time.time() - t)}))


def main() -> int:
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, required=True, help="the synthetic example's trained teacher")
    ap.add_argument("--shift", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--epochs", type=int, default=15,
                    help="distill epochs (15: as recorded in benchmarks/RESULTS.md, 'The hard generated set on host')")
    a = ap.parse_args()
    if not a.teacher.exists():
        raise SystemExit(f"no teacher at {a.teacher}: run benchmarks/pays.py --case synthetic first")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(a.teacher), str(s), str(a.epochs)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for s in a.shift]
    rows = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distill_augment.json").write_text(json.dumps(rows, indent=1))
    print("| augment.shift | best accuracy | final training loss | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['shift']} | {r['best']:.2f}% | {r['train_loss'][-1]:.3f} | {r['seconds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
