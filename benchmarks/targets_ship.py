"""The headline command with defaults ships on every target: host, a Jetson, a Pi.

    python benchmarks/targets_ship.py --case digits
    python benchmarks/targets_ship.py --case synthetic        # the hard generated set, reduced (6000/2000)
    python benchmarks/targets_ship.py --case photos --root /tmp/photos   # benchmarks/photo_patches.py's folder

For each case a config with only ``data`` and ``teacher`` (the teacher trained by edgekd), then:

1. **the wall**: the same config with ``search.constraints.speedup: 4`` written, ``--target jetson``:
   the exit code and the seconds until it (the teacher must not train);
2. **the defaults**: ``edgekd compress model.yaml --target host --target jetson --target rpi`` in a
   subprocess: the exit code, the wall time, the run's ``deploy:`` lines, and per target the file
   shipped, its latency and accuracy in its runtime, the speed-up over the teacher's best there,
   and the budget asked and reached;
3. **on host, side by side in one process**: the teacher's ONNX file, the shipped host file, and
   torch-pruning of the same teacher alone (pruned until its best host latency is at most the
   shipped file's, plain fine-tuning for the distill default of 10 epochs), each timed in ONNX
   Runtime and OpenVINO in interleaved rounds (medians) and evaluated on every validation image.

Results: ``benchmarks/results/targets_ship_<case>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
import pays  # noqa: E402

from edgekd.core.config import Config  # noqa: E402
from edgekd.engines.data.input_contract import load_run_data  # noqa: E402
from edgekd.engines.exporters.onnx_io import export_onnx  # noqa: E402
from edgekd.engines.models.artifact import load_model  # noqa: E402

TARGETS = ["host", "jetson", "rpi"]
TEACHER_TRAIN = {
    "digits": {"epochs": 4, "batch_size": 64, "optimizer": {"name": "sgd", "lr": 0.05},
               "schedule": {"warmup_epochs": 1}},
    "synthetic": {"epochs": 30, "batch_size": 128, "optimizer": {"lr": 0.1}, "schedule": {"warmup_epochs": 1}},
    "photos": {"epochs": 15, "batch_size": 64, "optimizer": {"lr": 0.05}, "schedule": {"warmup_epochs": 1}},
}


def config_for(case: str, work: Path, root: Path | None) -> dict[str, Any]:
    """Only data and teacher: everything else is edgekd's defaults."""
    if case == "digits":
        data: dict[str, Any] = {"source": "digits", "image_size": 32}
    elif case == "synthetic":
        data = {"source": "synthetic", "image_size": 32, "num_classes": 10, "difficulty": 0.5,
                **pays.SMALL_SYNTHETIC}
    else:
        assert root is not None, "--root: a folder written by benchmarks/photo_patches.py"
        data = {"source": "imagefolder", "path": str(root / "train"), "val_path": str(root / "val"),
                "image_size": 32}
    teacher = {"model": "resnet18", "checkpoint": str(work / f"{case}-teacher.safetensors"),
               "train": TEACHER_TRAIN[case]}
    return {"name": f"{case}-targets", "output_dir": str(work), "data": data, "teacher": teacher}


def cli(args: list[str], timeout: int) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "edgekd", *args], capture_output=True, text=True, timeout=timeout,
                       cwd=ROOT)
    return p.returncode, round(time.perf_counter() - t0, 1), p.stdout + p.stderr


def wall_case(raw: dict[str, Any], work: Path) -> dict[str, Any]:
    walled = {**raw, "name": f"{raw['name']}-wall", "search": {"constraints": {"speedup": 4}}}
    walled["teacher"] = {k: v for k, v in raw["teacher"].items() if k != "checkpoint"}  # it must not train
    path = work / "wall.yaml"
    path.write_text(yaml.safe_dump(walled))
    rc, seconds, out = cli(["compress", str(path), "--target", "jetson", "--force", "--quiet"], 1200)
    message = next((line for line in out.splitlines() if line.startswith("error")), out[-400:])
    return {"exit_code": rc, "seconds": seconds, "message": message,
            "teacher_trained": (work / walled["name"] / "teacher" / "model").exists()}


def default_case(raw: dict[str, Any], work: Path) -> dict[str, Any]:
    path = work / "model.yaml"
    path.write_text(yaml.safe_dump(raw))
    args = ["compress", str(path), "--force", "--quiet"] + [a for t in TARGETS for a in ("--target", t)]
    rc, seconds, out = cli(args, 6 * 3600)
    run = work / raw["name"]
    report = json.loads((run / "report" / "report.json").read_text()) if (run / "report").exists() else {}
    budgets = {t["name"]: t for t in report.get("targets", [])}
    rows = {}
    for target, d in report.get("deployment", {}).items():
        b = budgets.get(target, {})
        rows[target] = {"model": d["model"], "file": d["file"], "runtime": d["runtime"], "precision": d["precision"],
                        "ms": d["median_ms"], "kind": d["kind"], "accuracy": d["accuracy"],
                        "speedup_vs_teacher_best": d["speedup_vs_teacher_best"],
                        "teacher_best": d.get("teacher_best"), "budget": b.get("budget"),
                        "budget_ms": b.get("latency_budget_ms"), "floor": d.get("accuracy_floor")}
    return {"exit_code": rc, "seconds": seconds, "deploy_lines": [x for x in out.splitlines() if x.startswith("deploy:")],
            "tail": out[-1500:] if rc else None, "per_target": rows,
            "student_sources": report.get("comparisons", {}).get("student_sources"),
            "distillation": report.get("comparisons", {}).get("distillation"),
            "stage_seconds": {k: v.get("seconds") for k, v in report.get("stages", {}).items()}}


def host_side_by_side(raw: dict[str, Any], work: Path, passes: int) -> dict[str, Any]:
    run = work / raw["name"]
    pick = json.loads((run / "report" / "report.json").read_text())["deployment"]["host"]
    cfg = Config.model_validate(raw)
    data, _ = load_run_data(cfg)
    size = data.image_size
    teacher, _ = load_model(run / "teacher" / "model")
    x, y = pays.val_arrays(data)
    files = {"teacher": run / "export" / "teacher.onnx", "shipped": pays.shipped_file(run, pick)}
    with tempfile.TemporaryDirectory() as tmp:
        tp_model, tp_info = pays.torch_pruning_alone(teacher, data.to(torch.device("cpu")), size, pick["median_ms"],
                                                     cfg.distill.epochs, cfg.distill.batch_size)
        files["torch-pruning alone"] = export_onnx(tp_model, torch.randn(1, 3, size, size), Path(tmp) / "tp.onnx", 17)
        runs = [pays.side_by_side(files, x, y) for _ in range(passes)]
    rows = pays.median_rows(runs)
    return {"pick": {k: pick[k] for k in ("model", "file", "runtime", "precision", "median_ms", "accuracy")},
            "torch_pruning": tp_info, "rows": rows, "verdict": pays.verdict(rows, pick)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=list(TEACHER_TRAIN), default="digits")
    ap.add_argument("--root", type=Path, help="photos: the folder photo_patches.py wrote")
    ap.add_argument("--workdir", type=Path, default=common.CACHE / "targets_ship")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--skip-wall", action="store_true")
    a = ap.parse_args()
    work = a.workdir / a.case
    work.mkdir(parents=True, exist_ok=True)
    raw = config_for(a.case, work, a.root)
    out: dict[str, Any] = {"case": a.case, "config": raw, "targets": TARGETS, "environment": common.environment()}
    if not a.skip_wall:
        out["wall"] = wall_case(raw, work)
        print(json.dumps(out["wall"], indent=1), flush=True)
    out["defaults"] = default_case(raw, work)
    print("\n".join(out["defaults"]["deploy_lines"]) or out["defaults"]["tail"], flush=True)
    if out["defaults"]["exit_code"] in (0, 13):
        out["host"] = host_side_by_side(raw, work, a.passes)
        print(json.dumps(out["host"]["verdict"], indent=1))
    print(common.save(f"targets_ship_{a.case}", out))


if __name__ == "__main__":
    main()
