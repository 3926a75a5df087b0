"""QAT recipes vs PTQ on one converged student.

On a well-trained student, QAT + distillation can end *below* calibration alone (PTQ), which
is why the quantize stage keeps the better of the two (benchmarks/RESULTS.md, "The quantize
stage never ships QAT below PTQ"). This script compares the QAT recipes that could cause or
prevent that: it calibrates the student once (NNCF, ``mixed`` preset, 7-bit weights as on
this CPU without VNNI), keeps that PTQ state, and fine-tunes it from the same state with
each QAT recipe (the shared trainer, the teacher's soft targets), recording the best-epoch
accuracy (what the trainer keeps) and the last epoch's.

Small on purpose (2 heavily shared CPU cores): a 4 000-image version of the generated set
at difficulty 0.15, a one-block-per-stage quarter-width ResNet-18 teacher and a one-block
eighth-width ResNet-18 student (``--student mobilenet``: the demo's MobileNetV3-Small,
w 0.5, d 0.75, ~5x slower here), trained once and cached in benchmarks/.cache/. Every
recipe uses ``augment.shift: 0`` (the teacher's logits computed once, as in benchmarks/RESULTS.md,
"QAT with the teacher, QAT without it, PTQ from one student").

    python benchmarks/qat_recipe.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import common
import torch

from edgekd.core.config import DataConfig, LossTerm, TrainConfig
from edgekd.engines.data import load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_state_dict, save_state_dict
from edgekd.engines.quantization.nncf_int8 import calibration_batches
from edgekd.engines.quantization.recipe import QuantRecipe, apply_recipe
from edgekd.engines.train.trainer import train

DATA = {**common.SYNTHETIC, "train_size": 4000, "val_size": 1000, "difficulty": 0.15}
TEACHER = ("resnet18", {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]})
STUDENTS = {"resnet": ("resnet18", {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 16}),
            "mobilenet": ("edgekd.engines.search.builders:mobilenetv3", {"size": "small", "width": 0.5, "depth": 0.75})}
KD = [{"name": "kl", "temperature": 4.0, "alpha": 0.9}]

# name -> (TrainConfig overrides, freeze the quantizer ranges)
RECIPES: dict[str, tuple[dict, bool]] = {
    "old default: SGD 2e-3, 3 ep, α 0.9": ({"epochs": 3, "optimizer": {"lr": 0.002, "weight_decay": 0.0}}, False),
    "SGD 5e-4, 3 ep": ({"epochs": 3, "optimizer": {"lr": 5e-4, "weight_decay": 0.0}}, False),
    "SGD 1e-4, 3 ep": ({"epochs": 3, "optimizer": {"lr": 1e-4, "weight_decay": 0.0}}, False),
    "SGD 5e-4, 1 ep": ({"epochs": 1, "optimizer": {"lr": 5e-4, "weight_decay": 0.0}}, False),
    "AdamW 1e-4, 1 ep": ({"epochs": 1, "optimizer": {"name": "adamw", "lr": 1e-4, "weight_decay": 0.0}}, False),
    "SGD 2e-3, 3 ep, α 0.5": ({"epochs": 3, "optimizer": {"lr": 0.002, "weight_decay": 0.0},
                               "loss": [{"name": "kl", "temperature": 4.0, "alpha": 0.5}]}, False),
    "SGD 5e-4, 3 ep, ranges frozen": ({"epochs": 3, "optimizer": {"lr": 5e-4, "weight_decay": 0.0}}, True),
}


def cached(kind: str, spec: tuple[str, dict], bundle, cfg: TrainConfig, teacher=None) -> torch.nn.Module:
    """A model trained once on ``DATA`` and kept in benchmarks/.cache/."""
    path = common.CACHE / f"qat_recipe_{kind}.safetensors"
    model = build_model(spec[0], bundle.num_classes, spec[1])
    if path.exists():
        model.load_state_dict(read_state_dict(path))
    else:
        t0 = time.perf_counter()
        r = train(model, bundle, cfg, teacher=teacher, seed=0, label=kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_state_dict(model.state_dict(), path)
        print(f"{kind}: {r.best_accuracy:.2f}% in {time.perf_counter() - t0:.0f} s", flush=True)
    return model.eval()


def set_ranges_trainable(model: torch.nn.Module, trainable: bool) -> None:
    from nncf.torch.quantization.layers import BaseQuantizer

    for mod in model.modules():
        if isinstance(mod, BaseQuantizer):
            for p in mod.parameters():
                if p.is_floating_point():  # not the integer bit width
                    p.requires_grad_(trainable)


def run_recipe(qmodel, ptq_state, bundle, teacher, overrides: dict, freeze: bool, seed: int) -> dict:
    qmodel.load_state_dict(ptq_state)
    set_ranges_trainable(qmodel, not freeze)
    cfg = TrainConfig(**{"loss": [LossTerm(**t) for t in KD], "augment": {"shift": 0}, **overrides})
    t0 = time.perf_counter()
    r = train(qmodel, bundle, cfg, teacher=teacher, seed=seed, label="qat")
    return {"seed": seed, "best": round(r.best_accuracy, 2), "best_epoch": r.best_epoch,
            "final": round(r.final_accuracy, 2), "seconds": round(time.perf_counter() - t0),
            "per_epoch": [h["val_accuracy"] for h in r.history]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--recipes", nargs="*", help="substrings of recipe names (default: all)")
    ap.add_argument("--distill-epochs", type=int, default=10)
    ap.add_argument("--student", default="resnet", choices=sorted(STUDENTS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    bundle = load_data(DataConfig(**DATA))
    teacher = cached("teacher", TEACHER, bundle, TrainConfig(epochs=10, optimizer={"lr": 0.1}, augment={"shift": 2},
                                                            schedule={"warmup_epochs": 1}, loss=[LossTerm(name="ce")]))
    student = cached(f"{args.student}{args.distill_epochs}", STUDENTS[args.student], bundle,
                     TrainConfig(epochs=args.distill_epochs, optimizer={"lr": 0.05}, augment={"shift": 0},
                                 loss=[LossTerm(**t) for t in KD]), teacher)
    fp32 = common.accuracy(student, bundle)
    calib = calibration_batches(bundle.normalize(bundle.train_sample(512, 0)[0]), 512)
    qmodel, _ = apply_recipe(copy.deepcopy(student), calib, QuantRecipe("mixed", overflow_fix="enable"), quiet=True)
    ptq_state = copy.deepcopy(qmodel.state_dict())
    ptq = common.accuracy(qmodel, bundle)
    res = {"data": DATA, "teacher": TEACHER, "student": STUDENTS[args.student], "teacher_accuracy": common.accuracy(teacher, bundle),
           "fp32": fp32, "ptq": ptq, "recipes": {}}
    print(f"teacher {res['teacher_accuracy']:.2f}% · FP32 {fp32:.2f}% · PTQ {ptq:.2f}%", flush=True)
    chosen = {k: v for k, v in RECIPES.items() if not args.recipes or any(s in k for s in args.recipes)}
    for name, (overrides, freeze) in chosen.items():
        for seed in args.seeds:
            r = run_recipe(qmodel, ptq_state, bundle, teacher, overrides, freeze, seed)
            res["recipes"].setdefault(name, []).append(r)
            print(f"{name} seed {seed}: best {r['best']:.2f} (ep {r['best_epoch']}) final {r['final']:.2f} "
                  f"{r['per_epoch']} {r['seconds']} s", flush=True)
            common.save(f"qat_recipe_{args.student}_{'_'.join(map(str, args.seeds))}", res)
    print(json.dumps({k: [r["best"] for r in v] for k, v in res["recipes"].items()}, ensure_ascii=False))


if __name__ == "__main__":
    main()
