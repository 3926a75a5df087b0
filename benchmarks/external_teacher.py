#!/usr/bin/env python3
"""A teacher trained outside edgekd, brought in as a user would.

For each resolution: a user-style folder of JPEGs of mixed sizes (``examples/make_image_folder.py``),
torchvision's resnet18 trained on it by a plain PyTorch script (``plain_train_teacher.py``:
Resize + CenterCrop, ImageNet normalisation), then, through the ``edgekd`` CLI:

1. the checkpoint with its preprocessing stated (``torchvision.models:resnet18`` as the entry
   point): edgekd's teacher accuracy against the script's, and the distilled student;
2. the device kit's ``eval-images`` on the exported ONNX files, on the same validation JPEGs,
   against edgekd's PyTorch accuracy;
3. the same checkpoint with the data set's statistics instead of ImageNet's: the exit code,
   and whether anything was distilled.

    python benchmarks/external_teacher.py --sizes 32 96
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".cache" / "external"
sys.path.insert(0, str(ROOT / "examples"))
from make_image_folder import write_folder  # noqa: E402

STUDENT = {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}}


def sh(cmd: list[str], log: Path) -> int:
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=WORK).returncode


def teacher(folder: Path, size: int, epochs: int) -> tuple[Path, dict]:
    ckpt = WORK / f"teacher{size}.safetensors"
    meta = ckpt.with_suffix(".script.json")
    if not meta.exists():
        log = WORK / f"teacher{size}.log"
        rc = sh([sys.executable, str(HERE / "plain_train_teacher.py"), str(folder), "--size", str(size),
                 "--epochs", str(epochs), "--lr", "0.05", "--out", str(ckpt)], log)
        assert rc == 0, log.read_text()[-2000:]
        meta.write_text(log.read_text().strip().splitlines()[-1])
    return ckpt, json.loads(meta.read_text())


def config(name: str, folder: Path, size: int, ckpt: Path, script: dict, mean: str, epochs: int) -> Path:
    cfg = {
        "name": name, "output_dir": str(WORK / "runs"), "seed": 0,
        "data": {"source": "imagefolder", "path": str(folder / "train"), "val_path": str(folder / "val"),
                 "image_size": size, "preprocess": {"resize": "crop", "crop_fraction": 0.875,
                                                    "interpolation": "bilinear", "mean": mean, "std": mean}},
        "teacher": {"model": "torchvision.models:resnet18", "checkpoint": str(ckpt),
                    "expected_accuracy": script["script_val_accuracy"]},
        "student": STUDENT,
        "stages": ["distill", "export", "report"],
        "distill": {"epochs": epochs, "batch_size": 64, "compare_baseline": True,
                    "augment": {"shift": max(2, size // 16), "hflip": True}},
    }
    path = WORK / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def kit_accuracy(export: Path, model: str, val: Path) -> float:
    out = subprocess.run([sys.executable, str(export / "edgekd_kit.py"), "eval-images", str(export / f"{model}.onnx"),
                          "--images", str(val)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["accuracy"]


def run_size(size: int, folder: Path, teacher_epochs: int, distill_epochs: int) -> dict:
    ckpt, script = teacher(folder, size, teacher_epochs)
    row: dict = {"size": size, **script}
    t0 = time.perf_counter()
    good = config(f"ext{size}", folder, size, ckpt, script, "imagenet", distill_epochs)
    rc = sh(["edgekd", "compress", str(good), "--target", "host", "--force", "--quiet"], WORK / f"ext{size}.log")
    row["edgekd_rc"] = rc
    row["edgekd_seconds"] = round(time.perf_counter() - t0, 1)
    if rc == 0:
        rep = json.loads((WORK / "runs" / f"ext{size}" / "report" / "report.json").read_text())
        acc = {m["label"]: m["accuracy"] for m in rep["models"]}
        row.update(edgekd_teacher_accuracy=acc["teacher"], student_accuracy=acc["student"],
                   teacher_gap=round(acc["teacher"] - script["script_val_accuracy"], 3),
                   baseline_accuracy=rep["comparisons"].get("distillation", {}).get("without_teacher"),
                   input=rep["data"]["preprocess_summary"])
        export = WORK / "runs" / f"ext{size}" / "export"
        row["kit_teacher_accuracy"] = kit_accuracy(export, "teacher", folder / "val")
        row["kit_student_accuracy"] = kit_accuracy(export, "student", folder / "val")
    bad = config(f"ext{size}_wrongnorm", folder, size, ckpt, script, "dataset", distill_epochs)
    rc = sh(["edgekd", "compress", str(bad), "--target", "host", "--force", "--quiet"], WORK / f"ext{size}_bad.log")
    row["wrong_norm_rc"] = rc
    row["wrong_norm_message"] = next((ln for ln in (WORK / f"ext{size}_bad.log").read_text().splitlines()
                                      if ln.startswith("error")), "")
    row["wrong_norm_distilled"] = (WORK / "runs" / f"ext{size}_wrongnorm" / "distill").exists()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--teacher-epochs", type=int, default=10)
    ap.add_argument("--distill-epochs", type=int, default=6)
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    folder = WORK / "shapes128"
    if not (folder / "val").exists():
        write_folder(folder, a.train, a.val, size=128, render=64, difficulty=0.3, workers=2)
    rows = [run_size(s, folder, a.teacher_epochs, a.distill_epochs) for s in a.sizes]
    out = HERE / "results" / "external_teacher.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print("| size | script | edgekd teacher | gap | student (KD) | student (no KD) | kit teacher | kit student "
          "| wrong norm: exit, distilled |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['script_val_accuracy']:.2f} | {r.get('edgekd_teacher_accuracy', '–')} | "
              f"{r.get('teacher_gap', '–')} | {r.get('student_accuracy', '–')} | {r.get('baseline_accuracy', '–')} | "
              f"{r.get('kit_teacher_accuracy', '–')} | {r.get('kit_student_accuracy', '–')} | "
              f"{r['wrong_norm_rc']}, {r['wrong_norm_distilled']} |")
        print(f"  {r['wrong_norm_message'][:300]}")


if __name__ == "__main__":
    main()
