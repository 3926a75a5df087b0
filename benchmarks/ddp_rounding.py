"""Is a 1-vs-2-process accuracy gap DDP or rounding? Two measurements, CPU, gloo.

    python benchmarks/ddp_rounding.py steps              # weights after every step: float64 and float32
    python benchmarks/ddp_rounding.py seeds --seeds 3 4  # the synthetic teacher, 2 processes vs 1, per seed
    python benchmarks/ddp_rounding.py seeds --two-threads # + 1 process on 2 threads (ddp.py's one-process run)

``steps`` trains the synthetic case's teacher recipe (SGD, 1-epoch warm-up then cosine, shifts,
clipping, BatchNorm) on 2 048 images for 3 epochs as one process on one thread, one process on
two threads, and two processes under torchrun, and prints how far each run's weights are from
the first after selected steps. In float64 an exact implementation stays at rounding level
(~1e-16 growing slowly); in float32 the runs part within a few steps from rounding alone, and
what matters is whether two processes part faster than a change of thread count does.

``seeds`` trains the teacher of benchmarks/ddp.py's synthetic case (8 000 images, 15 epochs,
quarter-width ResNet-18) directly with the trainer, two processes (one thread each) beside one
process on one thread, for each seed: the distribution of the gap, where benchmarks/ddp.py gives
one gap per seed. Results: results/ddp_rounding_steps.json, results/ddp_rounding_seeds.json (a
seed already there is not re-run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ddp import SYNTHETIC  # benchmarks/ is this script's folder (run as a script, and so are its workers)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2), "2 processes (1 thread each)": (2, 1)}
SHOW_STEPS = (1, 2, 4, 8, 12, 16, 24, 32, 48)


def _worker(mode: str, seed: int, dtype: str, out: str) -> None:
    """One training run (started by ``_launch`` as one process or under torchrun)."""
    import torch

    from edgekd.core import dist
    from edgekd.core.config import DataConfig, TeacherTrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.models.build import build_model
    from edgekd.engines.train.trainer import train

    if dist.launched_by_torchrun():
        dist.init(torch.device("cpu"))
    w = dist.world()
    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    dt = torch.float64 if dtype == "float64" else torch.float32
    torch.set_default_dtype(dt)
    small = mode == "steps"
    case, teacher = SYNTHETIC["data"], SYNTHETIC["teacher"]  # benchmarks/ddp.py's case, not a copy of it
    data = load_data(DataConfig(**{**case, **({"train_size": 2048, "val_size": 512} if small else {})}))
    torch.manual_seed(seed)
    model = build_model(teacher["model"], case["num_classes"], teacher["kwargs"]).to(dt)
    cfg = TeacherTrainConfig(**{**teacher["train"], **({"epochs": 3} if small else {})})
    steps: list[torch.Tensor] = []
    if small:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(
            lambda *_: steps.append(torch.cat([p.detach().flatten() for p in model.parameters()]).double()))
    r = train(model, data, cfg, seed=seed)
    if w.main:
        torch.save({"steps": steps, "best": r.best_accuracy, "final_loss": r.history[-1]["train_loss"],
                    "curve": [h["val_accuracy"] for h in r.history], "seconds": round(r.seconds)}, out)


def _launch(mode: str, seed: int, dtype: str, out: Path, nproc: int, threads: int, port: int) -> subprocess.Popen:
    args = [__file__, "--worker", mode, str(seed), dtype, str(out)]
    cmd = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(port),
            *args] if nproc > 1 else [sys.executable, *args])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "BENCH_THREADS": str(threads)}
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait(p: subprocess.Popen, what: str) -> None:
    _, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"{what} failed:\n{err[-3000:]}")


def steps() -> int:
    """Relative distance of each run's weights from the one-thread run, per step, float64 and float32."""
    import torch

    table: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float64", "float32"):
            got = {}
            for i, (name, (nproc, threads)) in enumerate(RUNS.items()):  # one at a time: timings do not matter
                out = Path(tmp) / f"{dtype}-{i}"
                _wait(_launch("steps", 1, dtype, out, nproc, threads, 29750 + i), f"{dtype} {name}")
                got[name] = torch.load(out)["steps"]
            ref = got["1 process, 1 thread"]
            table[dtype] = {name: [float((a - b).norm() / b.norm()) for a, b in zip(run, ref, strict=True)]
                            for name, run in got.items() if run is not ref}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ddp_rounding_steps.json").write_text(json.dumps(table, indent=1))
    print("| precision | run, against 1 process on 1 thread | " + " | ".join(f"step {s}" for s in SHOW_STEPS) + " |")
    print("|---|---|" + "---|" * len(SHOW_STEPS))
    for dtype, rows in table.items():
        for name, d in rows.items():
            print(f"| {dtype} | {name} | " + " | ".join(f"{d[s - 1]:.1e}" for s in SHOW_STEPS if s <= len(d)) + " |")
    return 0


def seeds(wanted: list[int], two_threads: bool = False) -> int:
    """The teacher per seed: 2 processes and 1 process on 1 thread, side by side (3 processes, 2 cores);
    with ``two_threads`` also 1 process on 2 threads, alone (benchmarks/ddp.py's one-process run)."""
    import torch

    path = RESULTS / "ddp_rounding_seeds.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in wanted:
            if two_threads and str(s) in done and "1 process, 2 threads" not in done[str(s)]:
                out = Path(tmp) / f"t2{s}"
                _wait(_launch("seeds", s, "float32", out, 1, 2, 0), f"seed {s}, 1 process on 2 threads")
                done[str(s)]["1 process, 2 threads"] = {f: v for f, v in torch.load(out).items() if f != "steps"}
                path.write_text(json.dumps(done, indent=1))
                print(f"seed {s}: 1 process, 2 threads {done[str(s)]['1 process, 2 threads']['best']:.2f}%", flush=True)
            if str(s) in done:
                continue
            two, one = Path(tmp) / f"two{s}", Path(tmp) / f"one{s}"
            procs = [_launch("seeds", s, "float32", two, 2, 1, 29760 + s), _launch("seeds", s, "float32", one, 1, 1, 0)]
            for p, what in zip(procs, ("2 processes", "1 process"), strict=True):
                _wait(p, f"seed {s}, {what}")
            done[str(s)] = {k: {f: v for f, v in torch.load(p).items() if f != "steps"}
                            for k, p in (("2 processes", two), ("1 process, 1 thread", one))}
            RESULTS.mkdir(exist_ok=True)
            path.write_text(json.dumps(done, indent=1))
            print(f"seed {s}: " + ", ".join(f"{k} {v['best']:.2f}%" for k, v in done[str(s)].items()), flush=True)
    gaps = [v["2 processes"]["best"] - v["1 process, 1 thread"]["best"] for v in done.values()]
    print("| seed | 1 process, 1 thread | 2 processes | gap (points) | final train loss, 1 / 2 |")
    print("|---|---|---|---|---|")
    for s, v in sorted(done.items(), key=lambda kv: int(kv[0])):
        a, b = v["1 process, 1 thread"], v["2 processes"]
        print(f"| {s} | {a['best']:.2f}% | {b['best']:.2f}% | {b['best'] - a['best']:+.2f} | "
              f"{a['final_loss']:.3f} / {b['final_loss']:.3f} |")
    print(f"\n{len(gaps)} seeds: mean gap {statistics.mean(gaps):+.2f}, median {statistics.median(gaps):+.2f}, "
          f"2 processes lower in {sum(g < 0 for g in gaps)}")
    both = {s: v for s, v in done.items() if "1 process, 2 threads" in v}
    if both:  # ddp.py compares 2 processes (1 thread each) with 1 process on 2 threads: is the thread count a bias?
        print("\n| seed | 1 process, 2 threads | 1 process, 1 thread | 2 processes | 1 thread - 2 threads | "
              "2 processes - 2 threads |\n|---|---|---|---|---|---|")
        for s, v in sorted(both.items(), key=lambda kv: int(kv[0])):
            a, b, c = (v[k]["best"] for k in ("1 process, 2 threads", "1 process, 1 thread", "2 processes"))
            print(f"| {s} | {a:.2f}% | {b:.2f}% | {c:.2f}% | {b - a:+.2f} | {c - a:+.2f} |")
        d1 = [v["1 process, 1 thread"]["best"] - v["1 process, 2 threads"]["best"] for v in both.values()]
        d2 = [v["2 processes"]["best"] - v["1 process, 2 threads"]["best"] for v in both.values()]
        print(f"\nmean: 1 thread {statistics.mean(d1):+.2f}, 2 processes {statistics.mean(d2):+.2f} against 2 threads "
              f"({len(both)} seeds; lower in {sum(d < 0 for d in d1)} and {sum(d < 0 for d in d2)})")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("steps")
    sp = sub.add_parser("seeds")
    sp.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5, 6, 7, 8])
    sp.add_argument("--two-threads", action="store_true", help="also 1 process on 2 threads, alone, for each seed whose other two runs are "
                    "already in the results (run without it first)")
    a = ap.parse_args()
    return steps() if a.what == "steps" else seeds(a.seeds, a.two_threads)


if __name__ == "__main__":
    sys.exit(main())
