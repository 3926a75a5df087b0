"""A folder of real photographs' patches: images edgekd did not make, for the benchmarks.

No photo data set can be downloaded here, but scikit-image's wheel carries photographs
(`skimage.data`: a cat, coffee, bricks, grass, gravel, a rocket, a motorcycle, coins, the
Hubble deep field, a retina, ...). Each class is one photograph; an image is a random square
patch of it (10-35% of its shorter side, random position and flip, grey so colour alone does
not tell the class), written as a JPEG at 48 px. Training patches come from the left 70% of
each photograph, validation patches from the right 30%: the validation set is regions no
training image saw, so the task is texture and structure, not memorising pixels.

    pip install scikit-image                                   # benchmark-only dependency
    python benchmarks/photo_patches.py /tmp/photos --train 600 --val 150     # per class
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("brick", "grass", "gravel", "coffee", "chelsea", "rocket", "motorcycle_left", "coins",
          "hubble_deep_field", "retina")
SPLIT = 0.7  # training patches from the left 70% of each photograph, validation from the rest


def _grey(name: str) -> np.ndarray:
    """The photograph as shipped in scikit-image's wheel (read from the file: no download)."""
    import skimage
    from skimage import color

    folder = Path(skimage.__file__).parent / "data"
    path = next(folder.glob(f"{name}.*"))
    img = np.asarray(Image.open(path))
    if img.ndim == 3:
        img = (color.rgb2gray(img[..., :3]) * 255).astype(np.uint8)
    return img


def _patches(img: np.ndarray, n: int, x0: int, x1: int, size: int, rng: np.random.Generator) -> list[Image.Image]:
    h = img.shape[0]
    short = min(h, img.shape[1])
    out = []
    for _ in range(n):
        side = int(short * rng.uniform(0.10, 0.35))
        side = min(side, x1 - x0, h)
        x = int(rng.integers(x0, x1 - side + 1))
        y = int(rng.integers(0, h - side + 1))
        patch = Image.fromarray(img[y:y + side, x:x + side]).convert("RGB").resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            patch = patch.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(patch)
    return out


def write_folder(root: Path, train: int, val: int, size: int = 48, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        img = _grey(name)
        cut = int(img.shape[1] * SPLIT)
        for split, n, (x0, x1) in (("train", train, (0, cut)), ("val", val, (cut, img.shape[1]))):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(_patches(img, n, x0, x1, size, rng)):
                p.save(folder / f"{i:05d}.jpg", quality=90)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--train", type=int, default=600, help="training patches per class")
    ap.add_argument("--val", type=int, default=150, help="validation patches per class")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    write_folder(a.root, a.train, a.val, a.size, a.seed)
    print(f"wrote {a.root}: {len(PHOTOS)} classes, {a.train} train / {a.val} val patches each")


if __name__ == "__main__":
    main()
