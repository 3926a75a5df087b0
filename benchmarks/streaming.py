#!/usr/bin/env python3
"""Streaming vs in-memory image folders at 224 px, and a bare PyTorch DataLoader + KD loop.

For each set size (the first N/classes images of each class of one generated folder of JPEGs
of mixed sizes around 224 px), each mode runs in its own process, one after the other:

* ``memory``: edgekd decodes the folder into one uint8 tensor, then one distill epoch;
* ``stream``: edgekd streams it (DataLoader workers, timm transforms, per-batch teacher logits);
* ``bare``: what a user would write: a ``Dataset`` of the same files with the same timm
  transform, ``DataLoader(shuffle=True, num_workers=W)``, normalise, teacher forward under
  ``no_grad``, student forward/backward on Hinton KD, SGD step.

Each epoch stops after ``--steps`` batches (the same images/s as a whole epoch, minutes less).
Peak memory is the proportional set size (PSS) of the process and its workers, sampled
every 0.2 s: shared pages count once, so forked workers do not inflate it.

    python benchmarks/streaming.py --sizes 2000 10000 50000 --steps 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE / ".cache" / "stream224"
TEACHER, STUDENT = "mobilenetv3_large_100", "mobilenetv3_small_050"


class PeakPSS:
    """Peak PSS (MB) of this process and its children, sampled in a thread."""

    def __init__(self) -> None:
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> float:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(Exception):  # a worker that just exited
                total += p.memory_full_info().pss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop.set()
        self.thread.join()
        return round(max(self.peak, self._sample()), 1)


def data_config(n: int, stream: bool, workers: int):
    from edgekd.core.config import DataConfig

    return DataConfig(source="imagefolder", path=FOLDER / "train", val_path=FOLDER / "val", image_size=224,
                      max_per_class=n // 10, stream=stream, workers=workers,
                      preprocess={"resize": "crop", "mean": "imagenet", "std": "imagenet"})


def one(mode: str, n: int, steps: int, batch: int, workers: int) -> dict:
    import torch

    from edgekd.core.config import TrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.models.build import build_model
    from edgekd.engines.train.trainer import train

    torch.manual_seed(0)
    teacher, student = build_model(TEACHER, 10).eval(), build_model(STUDENT, 10)
    mem = PeakPSS()
    t0 = time.perf_counter()
    if mode == "bare":
        return bare(n, steps, batch, workers, teacher, student, mem)
    data = load_data(data_config(n, mode == "stream", workers))
    load_s = time.perf_counter() - t0
    cfg = TrainConfig(epochs=1, batch_size=batch, max_steps_per_epoch=steps, augment={"shift": 0, "hflip": True},
                      loss=[{"name": "kl", "temperature": 4.0, "alpha": 0.9}])
    t1 = time.perf_counter()
    r = train(student, data, cfg, teacher=teacher, seed=0)
    ips = r.history[0]["images_per_second"]  # the training loop alone, not the validation pass after it
    return {"mode": mode, "images": data.num_train, "load_s": round(load_s, 1), "epoch_s": round(steps * batch / ips, 1),
            "images_per_s": ips, "epoch_and_eval_s": round(time.perf_counter() - t1, 1), "peak_pss_mb": mem.stop()}


def bare(n: int, steps: int, batch: int, workers: int, teacher, student, mem: PeakPSS) -> dict:
    """The loop a user writes by hand: the reference for streaming's throughput."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    from edgekd.engines.data.imagefolder import EXTENSIONS
    from edgekd.engines.data.images import open_rgb
    from edgekd.engines.data.preprocess import Preprocess

    classes = sorted(p.name for p in (FOLDER / "train").iterdir())
    files = [(f, i) for i, c in enumerate(classes)
             for f in sorted(p for p in (FOLDER / "train" / c).iterdir() if p.suffix.lower() in EXTENSIONS)[: n // 10]]
    prep = Preprocess(224, resize="crop", crop_fraction=0.875, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    tf = prep.eval_transform()

    class Files(Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int):
            return tf(open_rgb(files[i][0])), files[i][1]

    loader = DataLoader(Files(), batch, shuffle=True, num_workers=workers, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    student.train()
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if step == steps:
            break
        x = prep.normalize(torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(-1), x))
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        loss = 0.9 * 16 * F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction="batchmean") \
            + 0.1 * F.cross_entropy(s, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t0
    return {"mode": "bare", "images": len(files), "load_s": 0.0, "epoch_s": round(secs, 1),
            "images_per_s": round(steps * batch / secs, 1), "peak_pss_mb": mem.stop()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000])
    ap.add_argument("--modes", nargs="+", default=["stream", "bare", "memory"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one", nargs=2, default=None, help=argparse.SUPPRESS)  # mode n: run in this process
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], int(a.one[1]), a.steps, a.batch, a.workers)))
        return
    if not (FOLDER / "val").exists():
        raise SystemExit(f"generate the folder first: python examples/make_image_folder.py {FOLDER} "
                         "--train 50000 --val 1000 --size 224 --render-size 64")
    rows = []
    for n in a.sizes:
        for mode in a.modes:
            out = subprocess.run([sys.executable, __file__, "--one", mode, str(n), "--steps", str(a.steps),
                                  "--batch", str(a.batch), "--workers", str(a.workers)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    (HERE / "results" / "streaming.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| images | mode | decode into memory (s) | distill img/s | peak PSS (MB) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['mode']} | {r['load_s']} | {r['images_per_s']} | {r['peak_pss_mb']} |")


if __name__ == "__main__":
    main()
