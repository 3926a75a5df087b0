"""INT8 on the same student: QAT with the teacher vs QAT without it vs PTQ, each measured in
ONNX Runtime and OpenVINO; and INT8 vs FP32 latency per runtime, side by side.

    python benchmarks/quantize_kd.py --data synthetic
"""

from __future__ import annotations

import argparse

import common

import edgekd

STUDENT = {"model": "mobilenetv3_small_100"}


def accuracies(report) -> dict:
    q = report.model("quantized")
    return {"torch": q.accuracy, "onnxruntime": q.runtime_accuracy.get("onnx int8 (onnxruntime)"),
            "openvino": q.runtime_accuracy.get("openvino int8 (openvino)")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "digits"])
    ap.add_argument("--distill-epochs", type=int, default=10)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--preset", default="mixed", choices=["mixed", "symmetric", "tensorrt"])
    args = ap.parse_args()
    bundle = common.data(args.data)
    common.teacher(args.data, bundle)
    out = common.HERE / ".cache" / "runs"
    qat = {"epochs": args.qat_epochs, "optimizer": {"lr": 0.002, "weight_decay": 0.0}, "augment": {"shift": 0}}
    base = common.run_config(
        f"quant-{args.data}-qat-kd", args.data, out, STUDENT, ["distill", "quantize", "export", "bench"],
        distill={"epochs": args.distill_epochs, "augment": {"shift": 0}, "loss": common.KD},
        quantize={"method": "qat", "preset": args.preset, "train": {**qat, "loss": common.KD}},
        export={"max_accuracy_gap": 100.0},  # measure every runtime's accuracy; the gap is what we report
    )
    runs = {"qat_kd": edgekd.compress(base, ["host"], force=True, quiet=True)}
    for name, quant in (("qat_plain", {"method": "qat", "preset": args.preset, "train": {**qat, "loss": common.PLAIN}}),
                        ("ptq", {"method": "ptq", "preset": args.preset})):
        run_name = f"quant-{args.data}-{name.replace('_', '-')}"
        common.fork_run(out / base["name"], out / run_name)
        cfg = {**base, "name": run_name, "stages": ["distill", "quantize", "export"], "quantize": quant}
        runs[name] = edgekd.compress(cfg, ["host"], resume=True, quiet=True)
        assert runs[name].stages["distill"]["resumed"]
    kd = runs["qat_kd"]
    fp32 = kd.model("student")
    lat = {rt: {"fp32": common.latency_of(kd, "student", rt, "fp32"), "int8": common.latency_of(kd, "quantized", rt, "int8")}
           for rt in ("onnxruntime", "openvino")}
    res = {"data": args.data, "student": STUDENT, "preset": args.preset, "teacher_accuracy": kd.model("teacher").accuracy,
           "fp32": {"torch": fp32.accuracy, **{k.split(" (")[1].rstrip(")"): v for k, v in fp32.runtime_accuracy.items()}},
           "int8": {name: accuracies(r) for name, r in runs.items()},
           "latency_ms": lat, "int8_speedup": {rt: round(v["fp32"] / v["int8"], 3) for rt, v in lat.items()},
           "sizes_mb": {"fp32_onnx": fp32.size_mb.get("onnx fp32"), "int8_onnx": kd.model("quantized").size_mb.get("onnx int8"),
                        "fp32_ir": fp32.size_mb.get("openvino fp32"), "int8_ir": kd.model("quantized").size_mb.get("openvino int8")},
           "epochs": {"distill": args.distill_epochs, "qat": args.qat_epochs}}
    path = common.save(f"quantize_kd_{args.data}", res)
    print(f"{args.data} ({args.preset}): FP32 {res['fp32']} · teacher {res['teacher_accuracy']:.2f}%")
    print("| method | PyTorch | ONNX Runtime | OpenVINO |\n|---|---|---|---|")
    for name, a in res["int8"].items():
        print(f"| {name} | {a['torch']:.2f} | {a['onnxruntime']:.2f} | {a['openvino']:.2f} |")
    print(f"latency (ms, batch 1): {lat} · INT8/FP32 speed-up {res['int8_speedup']} · {path}")


if __name__ == "__main__":
    main()
