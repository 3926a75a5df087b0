#!/usr/bin/env python3
"""Write a user-style image folder (``root/train/<class>/*.jpg``, ``root/val/<class>/*.jpg``)
from edgekd's generated shapes × textures set, for trying edgekd on files it did not make.

Like a real folder: JPEGs of mixed sizes and aspect ratios around ``--size`` (±25% per side),
with some PNGs, grayscale and CMYK JPEGs among them (``--odd-fraction``). The content is
drawn at ``--render-size`` and resized when saved (drawing at 224 px is ~50× slower than at
32 px; decoding cost, which is what streaming measures, depends on the saved size).

    python examples/make_image_folder.py data/shapes --train 2000 --val 500 --size 224
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CHUNK = 256


def _write_chunk(job: tuple) -> int:
    from PIL import Image

    from edgekd.engines.data.synthetic import class_names, generate

    out, start, n, render, size, classes, difficulty, seed, odd = job
    names = class_names(classes)
    x, y = generate(n, render, classes, difficulty, seed * 100_003 + start)
    rng = np.random.default_rng(seed * 7919 + start)
    for i in range(n):
        w, h = (int(size * f) for f in rng.uniform(0.75, 1.25, 2))
        im = Image.fromarray(x[i].permute(1, 2, 0).numpy()).resize((w, h), Image.Resampling.BICUBIC)
        kind = rng.random()
        folder = out / names[int(y[i])]
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"img{start + i:06d}"
        if kind < odd / 3:
            im.save(stem.with_suffix(".png"))
        elif kind < 2 * odd / 3:
            im.convert("L").save(stem.with_suffix(".jpg"), quality=90)
        elif kind < odd:
            im.convert("CMYK").save(stem.with_suffix(".jpg"), quality=90)
        else:
            im.save(stem.with_suffix(".jpg"), quality=90)
    return n


def write_split(out: Path, n: int, *, render: int, size: int, classes: int, difficulty: float, seed: int,
                odd: float, workers: int) -> None:
    jobs = [(out, s, min(CHUNK, n - s), render, size, classes, difficulty, seed, odd) for s in range(0, n, CHUNK)]
    if workers <= 1:
        for j in jobs:
            _write_chunk(j)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_chunk, jobs))


def write_folder(root: Path, train: int, val: int, *, size: int = 64, render: int = 48, classes: int = 10,
                 difficulty: float = 0.3, seed: int = 0, odd: float = 0.1, workers: int = 1) -> Path:
    """``root/train`` and ``root/val`` (disjoint seeds); returns ``root``."""
    root = Path(root)
    kw = {"render": render, "size": size, "classes": classes, "difficulty": difficulty, "odd": odd,
          "workers": workers}
    write_split(root / "train", train, seed=2 * seed, **kw)
    write_split(root / "val", val, seed=2 * seed + 1, **kw)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--size", type=int, default=224, help="saved size, ±25%% per side")
    ap.add_argument("--render-size", type=int, default=96)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--difficulty", type=float, default=0.3)
    ap.add_argument("--odd-fraction", type=float, default=0.1, help="PNG, grayscale and CMYK files among them")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    write_folder(Path(a.root), a.train, a.val, size=a.size, render=a.render_size, classes=a.classes,
                 difficulty=a.difficulty, seed=a.seed, odd=a.odd_fraction, workers=a.workers)
    print(f"wrote {a.train} training and {a.val} validation images under {a.root}/train and {a.root}/val")


if __name__ == "__main__":
    main()
