"""Shared set-up for the benchmark scripts: the hard generated data set, a cached teacher,
short-budget students, and result files.

Benchmarks are scripts, not tests: they write JSON to benchmarks/results/ and print a
Markdown table that goes into benchmarks/RESULTS.md with the command that produced it.
Timings on these shared machines are noisy: compare things measured side by side in one
run (interleaved), with medians.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from edgekd.core.config import DataConfig, LossTerm, TrainConfig
from edgekd.engines.data import DataBundle, load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_state_dict, save_state_dict
from edgekd.engines.train.evaluate import evaluate
from edgekd.engines.train.trainer import train

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"

# The generated set made hard (teacher ~85-95%, small students well below it).
SYNTHETIC = {"source": "synthetic", "image_size": 32, "num_classes": 10, "train_size": 20000, "val_size": 4000,
             "difficulty": 0.5, "seed": 0}
# The same set at a size whose teacher and students train in minutes on 2 cores (teacher ~60%).
SYNTHETIC_SMALL = {**SYNTHETIC, "train_size": 6000, "val_size": 2000}
DIGITS = {"source": "digits", "image_size": 32}
TEACHER = {"model": "resnet18", "kwargs": {"channels": [32, 64, 128, 256]}}
TEACHER_TRAIN = {"synthetic": dict(epochs=30, batch_size=128, optimizer={"lr": 0.1}, schedule={"warmup_epochs": 1},
                                   loss=[LossTerm(name="ce")]),
                 "synthetic-small": dict(epochs=15, batch_size=128, optimizer={"lr": 0.1},
                                         schedule={"warmup_epochs": 1}, loss=[LossTerm(name="ce")]),
                 "digits": dict(epochs=10, batch_size=64, optimizer={"lr": 0.05}, loss=[LossTerm(name="ce")])}


def data(name: str) -> DataBundle:
    sets = {"synthetic": SYNTHETIC, "synthetic-small": SYNTHETIC_SMALL, "digits": DIGITS}
    return load_data(DataConfig(**sets[name]))


def teacher(name: str, bundle: DataBundle, log=print) -> torch.nn.Module:
    """The benchmark teacher for a data set, trained once and cached in benchmarks/.cache."""
    path = CACHE / f"teacher_{name}.safetensors"
    model = build_model(TEACHER["model"], bundle.num_classes, TEACHER["kwargs"])
    if path.exists():
        model.load_state_dict(read_state_dict(path))
    else:
        t0 = time.perf_counter()
        torch.manual_seed(0)
        r = train(model, bundle, TrainConfig(**TEACHER_TRAIN[name]), seed=0, label=f"teacher {name}")
        save_state_dict(model.state_dict(), path)
        log(f"teacher {name}: {r.best_accuracy:.2f}% in {time.perf_counter() - t0:.0f} s")
    return model.eval()


def student_config(epochs: int, loss: list[dict[str, Any]], lr: float = 0.05, batch_size: int = 128,
                   shift: int = 0) -> TrainConfig:
    """The short, equal budget every compared student gets (shift 0: teacher logits computed once)."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, optimizer={"lr": lr}, augment={"shift": shift},
                       loss=[LossTerm(**t) for t in loss])


KD = [{"name": "kl", "temperature": 4.0, "alpha": 0.9}]
PLAIN = [{"name": "ce"}]


def train_student(model_name: str, kwargs: dict, bundle: DataBundle, cfg: TrainConfig, teacher_model, seed: int):
    torch.manual_seed(seed)
    student = build_model(model_name, bundle.num_classes, kwargs)
    r = train(student, bundle, cfg, teacher=teacher_model if cfg.uses_teacher else None, seed=seed)
    return student, r


def environment() -> dict[str, Any]:
    import onnxruntime
    import openvino

    return {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__.split("-")[0], "cpu": _cpu(), "threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.machine())
    except OSError:
        return platform.machine()


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"command": "python " + " ".join(sys.argv), "environment": environment(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def accuracy(model, bundle: DataBundle) -> float:
    return round(evaluate(model, bundle, torch.device("cpu")), 3)


def run_config(name: str, data_name: str, out: Path, student: dict[str, Any], stages: list[str],
               **sections: Any) -> dict[str, Any]:
    """A pipeline config on the benchmark data with the cached benchmark teacher."""
    return {"name": name, "output_dir": str(out), "seed": 0,
            "data": SYNTHETIC if data_name == "synthetic" else DIGITS,
            "teacher": {**TEACHER, "checkpoint": str(CACHE / f"teacher_{data_name}.safetensors")},
            "student": student, "stages": stages,
            "bench": {"repeats": 100, "rounds": 5, "warmup": 20}, **sections}


def fork_run(src: Path, dst: Path) -> None:
    """Copy a finished run so a variant can resume from it (shared earlier stages, not re-run)."""
    import shutil

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def latency_of(report, model: str, backend: str, precision: str) -> float | None:
    row = next((r for r in report.latency if r["model"] == model and r["runtime"] == backend
                and r["precision"] == precision and r["target"] == "host"), None)
    return row["median_ms"] if row else None
