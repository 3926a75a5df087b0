"""Does the harness move a small model's latency? One file timed alone in a fresh process, and
the same file timed among many loaded sessions, as the bench stage holds them.

    python benchmarks/timing_harness.py runs/digits/export

takes the ONNX files of a run's export folder, and times the smallest one (the student) three
ways, each in its own fresh process, median of interleaved rounds:

* ``alone``: a process that loads only that file in ONNX Runtime;
* ``among``: a process that loads every ONNX file of the folder in ONNX Runtime and OpenVINO
  (the bench's situation) and times them round-robin;
* ``among-nospin``: the same with ONNX Runtime's intra-op threads told not to spin-wait
  after a run (``session.intra_op.allow_spinning = 0``): do idle sessions' spinning threads take
  the cores the timed one needs?
* ``among+torch``: the same plus a PyTorch eager model timed between the blocks, as the bench
  times PyTorch eager in the same process (torch's OpenMP threads may spin after their work);
* ``bench-alone``: edgekd's own bench (its ONNX Runtime runner, rounds until stable) on that
  file alone: the fresh process the bench is compared with;
* ``bench``: edgekd's own bench (``measure_items``, default bench settings: rounds until
  stable) over every ONNX file in ONNX Runtime and OpenVINO;
* ``bench-after-training``: the same in a process that has just trained a small CNN for a few
  seconds on the same threads, as the pipeline's bench runs after distill, prune and QAT.

``--modes`` picks some; ``--repeat`` fresh processes per mode, interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r'''
import json, statistics, sys, time
import numpy as np
import onnxruntime as ort
files, target, mode, threads = json.loads(sys.argv[1])
def session(path, spin):
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
runs = {}
spin = mode != "among-nospin"
for f in ([target] if mode == "alone" else files):
    s = session(f, spin)
    name = s.get_inputs()[0].name
    runs[f] = (lambda s=s, name=name: s.run(None, {name: x}))
    if mode != "alone":
        import openvino as ov
        c = ov.Core().compile_model(f, "CPU", {"INFERENCE_NUM_THREADS": threads})
        runs[f + ":ov"] = (lambda c=c: c(x))
if mode == "among+torch":  # the bench also times PyTorch eager in the same process
    import torch
    torch.set_num_threads(threads)
    net = torch.nn.Sequential(*[torch.nn.Conv2d(3 if i == 0 else 32, 32, 3, padding=1) for i in range(6)]).eval()
    xt = torch.from_numpy(x)
    def eager():
        with torch.inference_mode():
            net(xt)
    runs["torch"] = eager
for r in runs.values():
    for _ in range(20):
        r()
medians = []
for _ in range(7):
    for key, r in runs.items():
        t_end = time.perf_counter() + 0.1
        while time.perf_counter() < t_end:
            r()
        ts = []
        for _ in range(50):
            t0 = time.perf_counter(); r(); ts.append(time.perf_counter() - t0)
        if key == target:
            medians.append(statistics.median(ts) * 1e3)
print(json.dumps({"mode": mode, "sessions": len(runs), "round_medians_ms": medians,
                  "median_ms": statistics.median(medians)}))
'''


CHILD_BENCH = r'''
import json, sys, time
from pathlib import Path
import numpy as np
files, target, mode, threads = json.loads(sys.argv[1])
import torch
torch.set_num_threads(threads)
if mode == "bench-after-training":  # a few seconds of training on the same threads first
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                              torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    t_end = time.perf_counter() + 5
    while time.perf_counter() < t_end:
        loss = torch.nn.functional.cross_entropy(net(torch.randn(64, 3, 32, 32)), torch.randint(0, 10, (64,)))
        opt.zero_grad(); loss.backward(); opt.step()
from edgekd.core.config import BenchConfig
from edgekd.engines.latency.measure import BenchItem, measure_items
items = [BenchItem(Path(f).stem, "onnx", "int8" if "quant" in Path(f).stem else "fp32", Path(f), rt)
         for f in files for rt in ("onnxruntime", "openvino")
         if mode != "bench-alone" or (f == target and rt == "onnxruntime")]
x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
recs = measure_items(items, x, BenchConfig(threads=threads))
rec = next(r for r in recs if r.model == Path(target).stem and r.runtime == "onnxruntime")
print(json.dumps({"mode": mode, "sessions": len(items), "round_medians_ms": rec.round_medians_ms,
                  "median_ms": rec.median_ms}))
'''
MODES = ("alone", "among", "among-nospin", "among+torch", "bench-alone", "bench", "bench-after-training")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per mode (interleaved)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = ap.parse_args()
    files = sorted(str(p) for p in args.export_dir.glob("*.onnx"))
    target = min(files, key=lambda f: Path(f).stat().st_size)
    out: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for mode in args.modes:
            code = CHILD_BENCH if mode.startswith("bench") else CHILD
            res = subprocess.run([sys.executable, "-c", code, json.dumps([files, target, mode, args.threads])],
                                 capture_output=True, text=True, check=True)
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            out.setdefault(mode, []).append(rec["median_ms"])
            print(json.dumps(rec), flush=True)
            time.sleep(1)
    print(f"\ntarget: {Path(target).name}; {len(files)} ONNX files loaded in ORT and OpenVINO for 'among'")
    base = statistics.median(out["bench-alone" if "bench-alone" in out else "alone"])
    for mode, v in out.items():
        m = statistics.median(v)
        print(f"{mode:>20}: median {m:.4f} ms ({m / base:.2f}x alone), per process {[round(x, 4) for x in v]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
