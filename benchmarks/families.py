"""A ViT teacher and a ConvNeXt teacher through the default command, against what a user gets
without edgekd.

    python benchmarks/families.py --teacher vit
    python benchmarks/families.py --teacher convnext

For each teacher: a config with only ``data`` (the generated set, 6000/2000 images, difficulty
0.5) and ``teacher`` (trained by edgekd with its family's recipe, kept as a checkpoint), run as
``edgekd compress model.yaml --target host --target raspberry-pi-5``. Then, on host, side by side
in one process (ONNX Runtime and OpenVINO, interleaved rounds, medians; accuracy on every
validation image in that runtime):

* the teacher's own ONNX file (its best runtime is what speed-ups are stated against);
* the file edgekd ships on host;
* **torch-pruning alone**: the teacher pruned with torch-pruning as its ViT example does (heads
  declared, class token and position embedding declared) until its best host latency is at most
  the shipped file's, then plain fine-tuning with the family's recipe for distill's epochs;
* **NNCF PTQ of the teacher**: ``nncf.quantize`` with ``ModelType.TRANSFORMER`` (what NNCF's docs
  say for transformers; the default fails on both families), converted to OpenVINO.

The Raspberry Pi's pick is predicted (no Pi here) and listed with its predicted speed-up.
Results: ``benchmarks/results/families_<teacher>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import pays  # noqa: E402

import edgekd  # noqa: E402
from edgekd.core.config import LossTerm, TrainConfig  # noqa: E402
from edgekd.engines.exporters.onnx_io import export_onnx  # noqa: E402
from edgekd.engines.models.attention import attention_heads, channel_parameters, mend_attention  # noqa: E402
from edgekd.engines.train.trainer import train  # noqa: E402

TEACHERS = {
    "vit": {"model": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 4, "depth": 4, "embed_dim": 128,
                                                         "num_heads": 4}},
    "convnext": {"model": "convnext_atto", "kwargs": {}},
}
DATA = {"source": "synthetic", "image_size": 32, "num_classes": 10, "train_size": 6000, "val_size": 2000,
        "difficulty": 0.5, "seed": 0}


def config(teacher: str, epochs: int, work: Path) -> dict[str, Any]:
    """What a new user writes: the data and the teacher, nothing else."""
    t = TEACHERS[teacher]
    return {"name": f"families-{teacher}", "output_dir": str(work), "data": dict(DATA),
            "teacher": {**t, "checkpoint": str(work / f"{teacher}-teacher.safetensors"), "train": {"epochs": epochs}}}


def torch_pruning_alone(teacher: torch.nn.Module, data: Any, size: int, goal_ms: float,
                        epochs: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """torch-pruning as its ViT example uses it, to the shipped file's latency, then plain fine-tuning."""
    import torch_pruning as tp

    model = copy.deepcopy(teacher).train()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    pruner = tp.pruner.MetaPruner(model, torch.randn(1, 3, size, size), importance=tp.importance.MagnitudeImportance(p=2),
                                  pruning_ratio=0.95, iterative_steps=60, ignored_layers=[last],
                                  num_heads=attention_heads(model), unwrapped_parameters=channel_parameters(model))
    steps = 0
    model.eval()
    while pays.best_host_ms(model, size) > goal_ms and steps < 60:
        pruner.step()
        mend_attention(model)
        steps += 1
    cfg = TrainConfig(epochs=epochs, loss=[LossTerm(name="ce")], augment={"shift": 0})  # the family's recipe fills in
    t0 = time.perf_counter()
    r = train(model, data, cfg, seed=0, label="torch-pruning alone, plain fine-tune")
    return model.eval(), {"pruner_steps": steps, "accuracy_pytorch": round(r.best_accuracy, 3),
                          "finetune_s": round(time.perf_counter() - t0, 1)}


def nncf_ptq(teacher: torch.nn.Module, data: Any, folder: Path) -> dict[str, Path]:
    import nncf
    import openvino as ov

    x, _ = data.train_sample(512, 0)
    calib = nncf.Dataset([data.normalize(x[i:i + 32]) for i in range(0, len(x), 32)])
    q = nncf.quantize(copy.deepcopy(teacher).eval(), calib, model_type=nncf.ModelType.TRANSFORMER)
    xml = folder / "teacher_ptq.xml"
    ov.save_model(ov.convert_model(q, example_input=data.normalize(x[:1])), xml)
    return {"nncf PTQ teacher": xml}


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    work = args.workdir / args.teacher
    work.mkdir(parents=True, exist_ok=True)
    raw = config(args.teacher, args.teacher_epochs, work)
    t0 = time.perf_counter()
    report = edgekd.compress(copy.deepcopy(raw), ["host", "raspberry-pi-5"], quiet=True, resume=True,
                             command="edgekd compress model.yaml --target host --target raspberry-pi-5")
    run_s = time.perf_counter() - t0
    run, pick, cfg, data, teacher, (x, y), files = pays.host_setup(raw, report, work)
    size = data.image_size
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tp_model, tp_info = torch_pruning_alone(teacher, data, size, pick["median_ms"], cfg.distill.epochs)
        files["torch-pruning alone"] = export_onnx(tp_model, torch.randn(1, 3, size, size), folder / "tp.onnx", 17)
        files.update(nncf_ptq(teacher, data, folder))
        passes = [pays.side_by_side(files, x, y) for _ in range(args.passes)]
    rows = pays.median_rows(passes)
    rpi = report.deployment["raspberry-pi-5"]
    return {"teacher": args.teacher, "teacher_config": TEACHERS[args.teacher], "data": DATA, "run_seconds": round(run_s, 1),
            "models": [{"label": m.label, "name": m.name, "accuracy": m.accuracy, "params": m.params, "macs": m.macs}
                       for m in report.models],
            "search": {k: report.search.get(k) for k in ("space", "budgets", "chosen")},
            "student_sources": report.comparisons.get("student_sources"),
            "host_pick": pick, "raspberry_pi_pick": rpi, "torch_pruning": tp_info, "rows": rows,
            "verdict": pays.verdict(rows, pick)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", choices=sorted(TEACHERS), required=True)
    ap.add_argument("--teacher-epochs", type=int, default=30)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=common.CACHE / "families")
    args = ap.parse_args()
    out = run_case(args)
    print(json.dumps(out, indent=2, default=str))
    print(f"saved {common.save(f'families_{args.teacher}', out)}")


if __name__ == "__main__":
    main()
