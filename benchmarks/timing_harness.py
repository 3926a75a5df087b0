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
  times PyTorch eager in the same process (torch's OpenMP threads may spin after their work).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per mode (interleaved)")
    args = ap.parse_args()
    files = sorted(str(p) for p in args.export_dir.glob("*.onnx"))
    target = min(files, key=lambda f: Path(f).stat().st_size)
    out: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for mode in ("alone", "among", "among-nospin", "among+torch"):
            res = subprocess.run([sys.executable, "-c", CHILD, json.dumps([files, target, mode, args.threads])],
                                 capture_output=True, text=True, check=True)
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            out.setdefault(mode, []).append(rec["median_ms"])
            print(json.dumps(rec), flush=True)
            time.sleep(1)
    print(f"\ntarget: {Path(target).name}; {len(files)} ONNX files loaded in ORT and OpenVINO for 'among'")
    base = statistics.median(out["alone"])
    for mode, v in out.items():
        m = statistics.median(v)
        print(f"{mode:>13}: median {m:.4f} ms ({m / base:.2f}x alone), per process {[round(x, 4) for x in v]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
