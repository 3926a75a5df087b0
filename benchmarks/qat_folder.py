"""QAT with the teacher against calibration alone (PTQ) on a folder of JPEGs.

    python benchmarks/qat_folder.py --root /tmp/shapes2 --difficulty 0.25 --train 8000 --val 1000 --workdir /tmp/qatf2
    python benchmarks/qat_folder.py --root /tmp/shapes --difficulty 0.4 --train 5000 --val 1000 --workdir /tmp/qatf

The folder is written by examples/make_image_folder.py (JPEGs of mixed sizes around 40 px,
PNG, grayscale and CMYK among them) unless it exists; edgekd reads it as a user's folder
(`source: imagefolder`, 32 px, the data set's mean/std). A ResNet-18 at half width is trained
in the run (20 epochs, kept in the workdir and reused), a ResNet-18 (1,1,1,1) w16 student is
distilled from it (20 epochs, KD vs plain), pruned to half its MACs (2 steps, KD fine-tune),
then quantized with the default QAT recipe, which also calibrates the same model (PTQ) and keeps
the better. One thread (OMP_NUM_THREADS=1), so another job beside it changes times, not accuracies.
Results: results/qat_folder_<folder name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def config(root: Path, work: Path) -> dict:
    return {
        "name": "qat-folder", "output_dir": str(work / "runs"),
        "data": {"source": "imagefolder", "path": str(root / "train"), "val_path": str(root / "val"),
                 "image_size": 32},
        "teacher": {"model": "resnet18", "kwargs": {"channels": [32, 64, 128, 256]},
                    "checkpoint": str(work / "teacher.safetensors"),
                    "train": {"epochs": 20, "batch_size": 128, "optimizer": {"lr": 0.1},
                              "schedule": {"warmup_epochs": 1}}},
        "student": {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}},
        "stages": ["distill", "prune", "quantize"],
        "distill": {"epochs": 20, "loss": [{"name": "kl", "temperature": 4.0, "alpha": 0.9}]},
        "prune": {"flops_ratio": 2.0, "steps": 2, "finetune": {"epochs": 5}},
        "quantize": {"method": "qat"},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="the image folder (written when absent)")
    ap.add_argument("--difficulty", type=float, default=0.25)
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, required=True)
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not (a.root / "train").is_dir():
        subprocess.run([sys.executable, str(ROOT / "examples" / "make_image_folder.py"), str(a.root),
                        "--train", str(a.train), "--val", str(a.val), "--size", "40", "--render-size", "40",
                        "--difficulty", str(a.difficulty), "--workers", "1"], check=True)
    a.workdir.mkdir(parents=True, exist_ok=True)
    cfg_path = a.workdir / "qat_folder.yaml"
    cfg_path.write_text(yaml.safe_dump(config(a.root, a.workdir), sort_keys=False))
    subprocess.run(["edgekd", "compress", str(cfg_path), "--target", "host", "--quiet"], env=env, check=True)
    run = a.workdir / "runs" / "qat-folder"
    metrics = {k: v["metrics"] for k, v in json.loads((run / "manifest.json").read_text())["stages"].items()}
    q = metrics["quantize"]
    row = {"folder": str(a.root), "difficulty": a.difficulty, "train": a.train, "val": a.val,
           "teacher": metrics["teacher"].get("accuracy"), "student": metrics["distill"].get("accuracy"),
           "pruned_fp32": q.get("fp32_accuracy"), "ptq": q.get("ptq_accuracy"),
           "qat": q.get("qat_accuracy"), "kept": q.get("kept"), "command": " ".join(sys.argv)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"qat_folder_{a.root.name}.json").write_text(json.dumps(row, indent=1))
    print("| folder | teacher | student | pruned FP32 | PTQ | QAT + KD | kept |\n|---|---|---|---|---|---|---|")
    print(f"| {a.root.name} (difficulty {a.difficulty}) | {row['teacher']}% | {row['student']}% | "
          f"{row['pruned_fp32']}% | {row['ptq']}% | {row['qat']}% | {row['kept']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
