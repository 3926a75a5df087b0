"""A user's directory of class folders (``root/<class>/<image>``), loaded into memory.

Images are decoded once with Pillow, converted to RGB and resized to ``image_size``.
An unreadable image is an error naming its path (or, with ``skip_bad_images``, a
warning), never a silent hole in the data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from edgekd.core.config import DataConfig
from edgekd.core.errors import DataError
from edgekd.core.registries import DATASETS
from edgekd.core.rundir import hash_obj
from edgekd.data.bundle import DataBundle, channel_stats, stratified_split

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


def _decode(files: list[Path], labels: list[int], size: int, skip_bad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image, UnidentifiedImageError

    arrays, kept = [], []
    for f, y in zip(files, labels, strict=True):
        try:
            with Image.open(f) as im:
                im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(im, dtype=np.uint8))
                kept.append(y)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            if not skip_bad:
                raise DataError(
                    f"cannot read image {f}: {exc}",
                    hint="delete or replace the file, or set data.skip_bad_images: true",
                ) from None
            log.warning("skipping unreadable image %s (%s)", f, exc)
    if not arrays:
        raise DataError("no readable images")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(kept, dtype=torch.long)


@DATASETS.register("imagefolder", params=ImageFolderParams, help="your folder of class sub-folders")
def load_imagefolder(cfg: DataConfig, p: ImageFolderParams) -> DataBundle:
    files, labels, classes = _scan(p.path, None, p.max_per_class)
    x, y = _decode(files, labels, cfg.image_size, p.skip_bad_images)
    listing = [(str(f), f.stat().st_size) for f in files]
    if p.val_path is not None:
        vfiles, vlabels, _ = _scan(p.val_path, classes, p.max_per_class)
        vx, vy = _decode(vfiles, vlabels, cfg.image_size, p.skip_bad_images)
        listing += [(str(f), f.stat().st_size) for f in vfiles]
        tx, ty = x, y
    else:
        tr, va = stratified_split(y, cfg.val_fraction, p.split_seed)
        tx, ty, vx, vy = x[tr], y[tr], x[va], y[va]
    mean, std = channel_stats(tx)
    return DataBundle(
        "imagefolder", tx, ty, vx, vy, classes, mean, std,
        {"files": hash_obj(listing), "size": cfg.image_size, "vf": cfg.val_fraction, "seed": p.split_seed},
    )
