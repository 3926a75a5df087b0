"""Pruning to half the MACs: distillation fine-tuning vs plain fine-tuning, and what it buys
in measured latency and file size.

One distilled student; then the prune stage (2 steps to 2x fewer MACs) fine-tuned with the
teacher (KD) or without it (labels only), same epochs and seed, from the same student.
Latency and size of pruned vs unpruned ONNX come from the bench stage (interleaved rounds).

    python benchmarks/prune_kd.py --data synthetic
    python benchmarks/prune_kd.py --data digits
"""

from __future__ import annotations

import argparse

import common

import edgekd

STUDENT = {"model": "mobilenetv3_small_100"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "digits"])
    ap.add_argument("--distill-epochs", type=int, default=10)
    ap.add_argument("--finetune-epochs", type=int, default=4, help="per pruning step")
    ap.add_argument("--ratio", type=float, default=2.0)
    args = ap.parse_args()
    bundle = common.data(args.data)
    common.teacher(args.data, bundle)  # cached
    out = common.HERE / ".cache" / "runs"
    ft = {"epochs": args.finetune_epochs, "optimizer": {"lr": 0.01}, "augment": {"shift": 0}}
    cfg = common.run_config(
        f"prune-{args.data}-kd", args.data, out, STUDENT, ["distill", "prune", "export", "bench"],
        distill={"epochs": args.distill_epochs, "augment": {"shift": 0}, "loss": common.KD},
        prune={"flops_ratio": args.ratio, "steps": 2, "importance": {"name": "taylor"},
               "finetune": {**ft, "loss": common.KD}},
    )
    kd = edgekd.compress(cfg, ["host"], force=True, quiet=True)
    common.fork_run(out / cfg["name"], out / f"prune-{args.data}-plain")
    plain_cfg = {**cfg, "name": f"prune-{args.data}-plain", "stages": ["distill", "prune", "export"],
                 "prune": {**cfg["prune"], "finetune": {**ft, "loss": common.PLAIN}}}
    plain = edgekd.compress(plain_cfg, ["host"], resume=True, quiet=True)
    assert plain.stages["distill"]["resumed"]  # the very same distilled student
    student, pruned = kd.model("student"), kd.model("pruned")
    res = {
        "data": args.data, "student": STUDENT, "teacher_accuracy": kd.model("teacher").accuracy,
        "unpruned_accuracy": student.accuracy, "pruned_kd_accuracy": pruned.accuracy,
        "pruned_plain_accuracy": plain.model("pruned").accuracy,
        "macs": {"unpruned": student.macs, "pruned": pruned.macs, "ratio": round(student.macs / pruned.macs, 3)},
        "params": {"unpruned": student.params, "pruned": pruned.params},
        "onnx_mb": {"unpruned": student.size_mb["onnx fp32"], "pruned": pruned.size_mb["onnx fp32"]},
        "ort_ms": {"unpruned": common.latency_of(kd, "student", "onnxruntime", "fp32"),
                   "pruned": common.latency_of(kd, "pruned", "onnxruntime", "fp32"),
                   "teacher": common.latency_of(kd, "teacher", "onnxruntime", "fp32")},
        "openvino_ms": {"unpruned": common.latency_of(kd, "student", "openvino", "fp32"),
                        "pruned": common.latency_of(kd, "pruned", "openvino", "fp32")},
        "steps_kd": kd.pruning["steps"], "steps_plain": plain.pruning["steps"],
        "epochs": {"distill": args.distill_epochs, "finetune_per_step": args.finetune_epochs, "steps": 2},
    }
    path = common.save(f"prune_kd_{args.data}", res)
    o = res["ort_ms"]
    print(f"{args.data}: teacher {res['teacher_accuracy']:.2f}% · student {res['unpruned_accuracy']:.2f}% "
          f"→ pruned {res['macs']['ratio']:.2f}× fewer MACs: KD fine-tune {res['pruned_kd_accuracy']:.2f}% vs plain "
          f"{res['pruned_plain_accuracy']:.2f}% · ORT {o['unpruned']:.4f} → {o['pruned']:.4f} ms · ONNX "
          f"{res['onnx_mb']['unpruned']:.2f} → {res['onnx_mb']['pruned']:.2f} MB · {path}")


if __name__ == "__main__":
    main()
