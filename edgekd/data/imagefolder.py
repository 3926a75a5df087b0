"""A user's directory of class folders (``root/<class>/<image>``).

Images are decoded with Pillow as torchvision's ``ImageFolder`` does (any mode → RGB),
then resized and cropped by the run's preprocessing contract with timm's transforms.
Small sets are decoded once into memory (by DataLoader workers); sets whose decoded
size exceeds ``data.stream_threshold_mb`` (or ``data.stream: true``) stream per batch.
An unreadable image is an error naming its path (or, with ``skip_bad_images``, a
warning), never a silent hole in the data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

from edgekd.core.config import DataConfig
from edgekd.core.errors import DataError
from edgekd.core.registries import DATASETS
from edgekd.core.rundir import hash_obj
from edgekd.data.bundle import Data, DataBundle, stratified_split
from edgekd.data.images import decode_all, default_workers
from edgekd.data.preprocess import Preprocess
from edgekd.data.streaming import StreamingData

log = logging.getLogger(__name__)
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageFolderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Field(description="root folder with one sub-folder per class")
    val_path: Path | None = Field(None, description="separate validation folder; else split path")
    split_seed: int = 0
    skip_bad_images: bool = False
    max_per_class: int | None = Field(None, ge=1)


def _scan(root: Path, classes: list[str] | None, max_per_class: int | None) -> tuple[list[Path], list[int], list[str]]:
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}", hint="set data.path to a folder of class sub-folders")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = found
    if not classes:
        raise DataError(f"{root} has no class sub-folders", hint="layout: <path>/<class_name>/<image>.png")
    missing = sorted(set(classes) - set(found))
    if missing:
        raise DataError(f"{root} lacks class folders {missing} that the training folder has")
    files, labels = [], []
    for i, c in enumerate(classes):
        imgs = sorted(p for p in (root / c).rglob("*") if p.suffix.lower() in EXTENSIONS)
        if not imgs:
            raise DataError(f"class folder {root / c} has no images ({', '.join(EXTENSIONS)})")
        imgs = imgs[:max_per_class] if max_per_class else imgs
        files += imgs
        labels += [i] * len(imgs)
    return files, labels, classes


def _listing(files: list[Path]) -> list[tuple[str, int]]:
    return [(str(f), f.stat().st_size) for f in files]


@DATASETS.register("imagefolder", params=ImageFolderParams, help="your folder of class sub-folders")
def load_imagefolder(cfg: DataConfig, p: ImageFolderParams, prep: Preprocess) -> Data:
    files, labels, classes = _scan(p.path, None, p.max_per_class)
    y = torch.tensor(labels, dtype=torch.long)
    if p.val_path is not None:
        vfiles, vlabels, _ = _scan(p.val_path, classes, p.max_per_class)
        tf, ty, vf, vy = files, y, vfiles, torch.tensor(vlabels, dtype=torch.long)
    else:
        tr, va = stratified_split(y, cfg.val_fraction, p.split_seed)
        tf, ty, vf, vy = [files[i] for i in tr], y[tr], [files[i] for i in va], y[va]
    extra = {"files": hash_obj(_listing(tf) + _listing(vf)), "vf": cfg.val_fraction, "seed": p.split_seed}
    decoded_mb = (len(tf) + len(vf)) * 3 * prep.size * prep.size / 2**20
    stream = cfg.stream if cfg.stream != "auto" else decoded_mb > cfg.stream_threshold_mb
    workers = default_workers(len(tf) + len(vf), cfg.workers)
    if stream:
        log.info("streaming %d images (%.0f MB decoded) with %d workers", len(tf) + len(vf), decoded_mb, workers)
        return StreamingData("imagefolder", [str(f) for f in tf], ty, [str(f) for f in vf], vy, classes, prep,
                             extra, workers=workers, skip_bad=p.skip_bad_images)  # str: 1M Paths cost ~0.5 GB
    transform = prep.eval_transform()
    tx, ty = decode_all(tf, ty, transform, workers=workers, skip_bad=p.skip_bad_images)
    vx, vy = decode_all(vf, vy, transform, workers=workers, skip_bad=p.skip_bad_images)
    return DataBundle("imagefolder", tx, ty, vx, vy, classes, prep, extra)
