"""Heterogeneous distillation: OFA-KD against logit KD and no KD, teacher and student of different families.

A ViT teacher with a ResNet student, and a ResNet teacher with a ViT student, on the generated
set made smaller and easier (6 000 / 2 000 images, 32 px, difficulty 0.1) so the whole script
fits about 25 minutes on two busy cores. Per pair and seed the same student (same initial weights, data order, epochs and
optimizer) is trained three ways: labels only (``ce``), Hinton KD (``kl``, T 4, α 0.9) and
``ofa`` (its defaults: ε 1, T 1, branches at the last four stages). Students see unaugmented
images, so the teacher's logits are computed once for both KD losses.

    python benchmarks/hetero_kd.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from typing import Any

import common
import torch

from edgekd.core.config import DataConfig, LossTerm, TrainConfig
from edgekd.engines.data import DataBundle, load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_state_dict, save_state_dict
from edgekd.engines.train.trainer import train

DATA = {"source": "synthetic", "image_size": 32, "num_classes": 10, "train_size": 6000, "val_size": 2000,
        "difficulty": 0.1, "seed": 0}
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    # teachers
    "vit-4x64": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 4, "embed_dim": 64, "depth": 4,
                                          "num_heads": 2, "mlp_ratio": 2.0}),
    "resnet18-w24": ("resnet18", {"layers": [1, 1, 1, 1], "channels": [24, 48, 96, 192]}),
    # students: each distilled from the teacher of the other family
    "resnet-w16": ("resnet18", {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}),
    "vit-3x64-p8": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 3,
                                             "num_heads": 2, "mlp_ratio": 2.0}),
}
# a ViT learns slowly from 6 000 images (12 epochs at difficulty 0.2: 55.7%, below the ResNet student
# without a teacher): it gets more epochs than the ResNet
TEACHER_EPOCHS = {"vit-4x64": 20, "resnet18-w24": 10}
PAIRS = (("vit-4x64", "resnet-w16"), ("resnet18-w24", "vit-3x64-p8"))
METHODS = {"ce": common.PLAIN, "kl": common.KD, "ofa": [{"name": "ofa"}]}
# what carries OFA's gain: its stage branches, or its loss on the final logits (--methods ...)
ABLATIONS = {"ofa-no-branches": [{"name": "ofa", "branch_weight": 0.0}]}


def teacher(label: str, bundle: DataBundle, epochs: int | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A teacher trained once per (model, data, epochs) and cached in benchmarks/.cache, with its record."""
    name, kwargs = MODELS[label]
    epochs = epochs or TEACHER_EPOCHS[label]
    key = hashlib.sha256(json.dumps([name, kwargs, DATA, epochs], sort_keys=True).encode()).hexdigest()[:10]
    path = common.CACHE / f"hetero_{label}_{key}.safetensors"
    model = build_model(name, bundle.num_classes, kwargs)
    if path.exists():
        model.load_state_dict(read_state_dict(path))
        return model.eval(), {**json.loads(path.with_suffix(".json").read_text()), "cached": True}
    cfg = TrainConfig(epochs=epochs, batch_size=64, optimizer={"lr": 0.1}, schedule={"warmup_epochs": 1},
                      loss=[LossTerm(name="ce")])  # a transformer gets AdamW at 0.002 from its recipe
    torch.manual_seed(0)
    r = train(model, bundle, cfg, seed=0, label=f"teacher {label}")
    info = {"model": name, "kwargs": kwargs, "epochs": epochs, "accuracy": round(r.best_accuracy, 3),
            "seconds": round(r.seconds, 1), "recipe": r.recipe}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(model.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return model.eval(), {**info, "cached": False}


def run_pair(t_label: str, s_label: str, bundle: DataBundle, t_model: torch.nn.Module, epochs: int, seed: int,
             methods: list[str]) -> dict[str, Any]:
    """One seed of one pair: the same student trained with each method."""
    name, kwargs = MODELS[s_label]
    row: dict[str, Any] = {"teacher": t_label, "student": s_label, "seed": seed}
    for method in methods:
        cfg = common.student_config(epochs, {**METHODS, **ABLATIONS}[method], batch_size=64)  # a ViT needs the steps
        _, r = common.train_student(name, kwargs, bundle, cfg, t_model, seed)
        row[method] = round(r.best_accuracy, 3)
        row[f"{method}_seconds"] = round(r.seconds, 1)
        print(f"  {t_label} -> {s_label} seed {seed} {method}: {r.best_accuracy:.2f}% in {r.seconds:.0f} s",
              flush=True)
    return row


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t_label, s_label in PAIRS:
        rs = [r for r in rows if r["teacher"] == t_label]
        stats: dict[str, Any] = {}
        for k in (*methods, *(f"{m}_seconds" for m in methods)):
            vals = [r[k] for r in rs]
            stats[k] = {"mean": round(statistics.fmean(vals), 2), "sd": round(statistics.pstdev(vals), 2)}
        if "ofa" in methods and "kl" in methods:
            gains = [r["ofa"] - r["kl"] for r in rs]
            stats["ofa_minus_kl"] = {"mean": round(statistics.fmean(gains), 2),
                                     "per_seed": [round(g, 2) for g in gains]}
        out[f"{t_label} -> {s_label}"] = stats
    return out


def table(summary: dict[str, Any], teachers: dict[str, Any], methods: list[str]) -> str:
    gain = "ofa" in methods and "kl" in methods
    head = ["teacher (acc) → student", *methods, *(["OFA − KD (per seed)"] if gain else []),
            f"seconds {' / '.join(methods)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pair, s in summary.items():
        t_label, s_label = pair.split(" -> ")
        cells = [f"{t_label} ({teachers[t_label]['accuracy']:.2f}%) → {s_label}",
                 *(f"{s[m]['mean']:.2f} ± {s[m]['sd']:.2f}" for m in methods)]
        if gain:
            per = ", ".join(f"{g:+.2f}" for g in s["ofa_minus_kl"]["per_seed"])
            cells.append(f"{s['ofa_minus_kl']['mean']:+.2f} ({per})")
        cells.append(" / ".join(f"{s[f'{m}_seconds']['mean']:.0f}" for m in methods))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=6, help="student epochs, the same for every method")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=[*METHODS, *ABLATIONS])
    ap.add_argument("--teacher-epochs", type=int, default=None, help="both teachers (default: TEACHER_EPOCHS)")
    ap.add_argument("--train-size", type=int, default=DATA["train_size"], help="smaller: a quick check of the script")
    args = ap.parse_args()
    name = ("hetero_kd" if args.train_size == DATA["train_size"] else "hetero_kd_quick") + \
        ("" if args.methods == list(METHODS) else "_" + "_".join(args.methods))  # a check keeps the results
    DATA.update(train_size=args.train_size, val_size=min(DATA["val_size"], max(100, args.train_size // 3)))
    t0, load_before = time.perf_counter(), os.getloadavg()
    bundle = load_data(DataConfig(**DATA))
    teachers, rows = {}, []
    for t_label, s_label in PAIRS:
        t_model, teachers[t_label] = teacher(t_label, bundle, args.teacher_epochs)
        print(f"teacher {t_label}: {teachers[t_label]['accuracy']:.2f}% ({teachers[t_label]['seconds']:.0f} s"
              f"{', cached' if teachers[t_label]['cached'] else ''})", flush=True)
        rows += [run_pair(t_label, s_label, bundle, t_model, args.epochs, seed, args.methods) for seed in args.seeds]
    summary = summarise(rows, args.methods)
    wall = round(time.perf_counter() - t0, 1)
    md = table(summary, teachers, args.methods)
    path = common.save(name, {"data": DATA, "models": MODELS, "teachers": teachers, "epochs": args.epochs,
                              "seeds": args.seeds, "methods": {m: {**METHODS, **ABLATIONS}[m] for m in args.methods},
                              "rows": rows, "summary": summary, "wall_seconds": wall, "load_before": load_before,
                              "load_after": os.getloadavg()})
    path.with_suffix(".md").write_text(md + "\n")
    print(f"\n{args.epochs} student epochs · seeds {args.seeds} · {wall:.0f} s · load {load_before} -> "
          f"{os.getloadavg()} · {path}\n{md}")


if __name__ == "__main__":
    main()
