"""Does distillation beat training the same student without the teacher, at the same budget?

Same student, same epochs, optimizer, data order and seed; the only difference is the
loss (Hinton KD, T=4, alpha=0.9, vs cross-entropy on the labels). Several seeds.

    python benchmarks/kd_vs_plain.py --data synthetic --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics

import common

STUDENTS = {
    "mobilenetv3_small_050": {},
    "resnet-tiny": {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "digits"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    bundle = common.data(args.data)
    teacher = common.teacher(args.data, bundle)
    t_acc = common.accuracy(teacher, bundle)
    rows = []
    for label, spec in STUDENTS.items():
        name, kwargs = spec.get("model", label), spec.get("kwargs", {})
        for seed in args.seeds:
            res = {}
            for method, loss in (("kd", common.KD), ("plain", common.PLAIN)):
                _, r = common.train_student(name, kwargs, bundle, common.student_config(args.epochs, loss), teacher, seed)
                res[method] = round(r.best_accuracy, 3)
            rows.append({"student": label, "seed": seed, **res, "gain": round(res["kd"] - res["plain"], 3)})
            print(rows[-1], flush=True)
    summary = {}
    for label in STUDENTS:
        rs = [r for r in rows if r["student"] == label]
        summary[label] = {k: {"mean": round(statistics.fmean(r[k] for r in rs), 2),
                              "std": round(statistics.pstdev(r[k] for r in rs), 2)} for k in ("kd", "plain", "gain")}
    path = common.save(f"kd_vs_plain_{args.data}", {"data": args.data, "teacher_accuracy": t_acc, "epochs": args.epochs,
                                                     "rows": rows, "summary": summary})
    print(f"\nteacher {t_acc:.2f}% · {args.epochs} epochs · seeds {args.seeds} · {path}")
    print("| student | KD (mean ± sd) | no teacher (mean ± sd) | gain (points) |\n|---|---|---|---|")
    for label, s in summary.items():
        print(f"| {label} | {s['kd']['mean']:.2f} ± {s['kd']['std']:.2f} | {s['plain']['mean']:.2f} ± "
              f"{s['plain']['std']:.2f} | {s['gain']['mean']:+.2f} ± {s['gain']['std']:.2f} |")


if __name__ == "__main__":
    main()
