"""What needs a CUDA GPU, checked on one: every training stage on ``cuda``, and GPU latency.

1. ``latency``: batch-1 and batch-32 latency of ImageNet-size models on the GPU, side by
   side (interleaved rounds, medians): PyTorch eager FP32, eager FP16 (channels_last),
   and edgekd's torch CUDA runtime (FP16 replayed as a CUDA graph, input copy and
   logits back to the host included); with ONNX Runtime FP32 on the same machine's CPU as
   the "no GPU" reference. The CUDA-graph logits are compared with eager FP32.
2. ``pipeline``: the digits demo with ``device: cuda`` (search, distill, prune, quantize
   (QAT with NNCF), export, bench, report), stage times and accuracies from its report.

    python benchmarks/gpu_check.py [--out DIR] [--only latency|pipeline]

Needs a CUDA GPU; prints why not and exits 2 without one. Not a test: CI has no GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
MODELS = [("resnet18", 224), ("resnet50", 224), ("mobilenetv3_large_100", 224)]


def _eager(model: torch.nn.Module, dtype: torch.dtype):
    m = model.to("cuda", dtype=dtype, memory_format=torch.channels_last).eval()

    @torch.inference_mode()
    def run(x: np.ndarray) -> np.ndarray:
        return m(torch.from_numpy(x).to("cuda", dtype)).float().cpu().numpy()

    return run


def latency(rounds: int = 5, repeats: int = 40) -> list[dict]:
    import copy

    from edgekd.engines.exporters.onnx_io import export_onnx
    from edgekd.engines.latency.timing import summarize, time_calls
    from edgekd.engines.models.build import build_model
    from edgekd.engines.runtimes.base import default_threads
    from edgekd.engines.runtimes.onnxruntime import OnnxRuntime
    from edgekd.engines.runtimes.torch import TorchRuntime

    rows = []
    for name, size in MODELS:
        torch.manual_seed(0)
        model = build_model(name, 1000, {}).eval()
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = export_onnx(model, torch.randn(1, 3, size, size), Path(tmp) / "m.onnx", 17)
            for batch in (1, 32):
                x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
                runners = {
                    "torch eager fp32 (cuda)": (_eager(copy.deepcopy(model), torch.float32), torch.cuda.synchronize),
                    "torch eager fp16 (cuda)": (_eager(copy.deepcopy(model), torch.float16), torch.cuda.synchronize),
                }
                graph = TorchRuntime().wrap(copy.deepcopy(model), precision="fp16", threads=None, device="cuda")
                runners["edgekd torch fp16 CUDA graph"] = (graph.run, graph.sync)
                ort = OnnxRuntime().load(onnx_path, precision="fp32", threads=default_threads())
                runners[f"onnxruntime fp32 (CPU, {ort.threads} threads)"] = (ort.run, None)
                ref = runners["torch eager fp32 (cuda)"][0](x)
                outs = {k: fn(x) for k, (fn, _) in runners.items()}  # also the warm-up / graph capture
                for fn, sync in runners.values():
                    time_calls(lambda fn=fn, x=x: fn(x), 5, sync)
                samples: dict[str, list[float]] = {k: [] for k in runners}
                for _ in range(rounds):
                    for k, (fn, sync) in runners.items():
                        n = repeats if "CPU" not in k or batch == 1 else max(3, repeats // 8)
                        samples[k] += time_calls(lambda fn=fn, x=x: fn(x), n, sync)
                for k, s in samples.items():
                    st = summarize(s)
                    diff = float(np.abs(outs[k] - ref).max())
                    agree = float((outs[k].argmax(1) == ref.argmax(1)).mean())
                    rows.append({"model": f"{name}@{size}", "batch": batch, "runner": k,
                                 "median_ms": round(st.median_ms, 4), "p90_ms": round(st.p90_ms, 4),
                                 "images_per_s": round(batch / st.median_ms * 1e3, 1), "samples": st.samples,
                                 "max_abs_diff_vs_eager_fp32": round(diff, 4), "top1_agreement": agree})
                    print(f"{name}@{size} b{batch} {k}: {st.median_ms:.3f} ms (p90 {st.p90_ms:.3f}), "
                          f"max|Δ| {diff:.4f}, top-1 agree {agree:.2f}", flush=True)
    return rows


def pipeline(out: Path) -> dict:
    name = "digits-cuda"
    cmd = [sys.executable, "-m", "edgekd", "compress", "examples/digits.yaml", "--target", "host", "--quiet",
           "--output-dir", str(out), "--name", name, "--set", "device=cuda"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout[-4000:], proc.stderr[-4000:], flush=True)
    rep_path = out / name / "report" / "report.json"
    if not rep_path.exists():
        return {"exit_code": proc.returncode, "wall_seconds": round(wall, 1), "stderr": proc.stderr[-4000:]}
    rep = json.loads(rep_path.read_text())
    models = {m["label"]: m for m in rep["models"]}
    return {"exit_code": proc.returncode, "wall_seconds": round(wall, 1),
            "stage_seconds": {k: v["seconds"] for k, v in rep["stages"].items()},
            "accuracy": {k: m["accuracy"] for k, m in models.items()},
            "runtime_accuracy": {k: m["runtime_accuracy"] for k, m in models.items()},
            "latency": [r for r in rep["latency"] if r["target"] == "host"],
            "speedups": rep["speedups"], "environment": rep.get("environment")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--only", choices=["latency", "pipeline"])
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible here; run it on a machine with one")
        sys.exit(2)
    env = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    print(env, flush=True)
    res: dict = {"environment": env}
    if args.only in (None, "latency"):
        res["latency"] = latency()
    if args.only in (None, "pipeline"):
        with tempfile.TemporaryDirectory() as tmp:
            res["pipeline"] = pipeline(Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu_check{'_' + args.only if args.only else ''}.json"
    path.write_text(json.dumps(res, indent=1))
    print(path)


if __name__ == "__main__":
    main()
