"""A user's directory of class folders (``root/<class>/<image>``).

Images are decoded with Pillow as torchvision's ``ImageFolder`` does (any mode → RGB),
then resized and cropped by the run's preprocessing contract with timm's transforms.
Small sets are decoded once into memory (by DataLoader workers); sets whose decoded
size exceeds ``data.stream_threshold_mb`` (or ``data.stream: true``) stream per batch.
An unreadable image is an error naming its path (or, with ``skip_bad_images``, a
warning), never a silent hole in the data; so is a validation class the training folder
lacks (a validation folder missing some classes is only a warning).
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
from edgekd.engines.data.bundle import Data, DataBundle, stratified_split
from edgekd.engines.data.images import decode_all, default_workers
from edgekd.engines.data.preprocess import Preprocess
from edgekd.engines.data.streaming import StreamingData

log = logging.getLogger(__name__)
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageFolderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Field(description="root folder with one sub-folder per class")
    val_path: Path | None = Field(None, description="separate validation folder; else split path")
    split_seed: int = 0
    skip_bad_images: bool = False
    max_per_class: int | None = Field(None, ge=1)


def _class_folders(root: Path, key: str) -> list[str]:
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}", hint=f"set {key} to a folder of class sub-folders")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise DataError(f"{root} has no class sub-folders", hint="layout: <path>/<class_name>/<image>.png")
    return found


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS) if folder.is_dir() else []


def _scan(root: Path, classes: list[str], max_per_class: int | None) -> tuple[list[Path], list[int], list[str]]:
    """Images and labels of ``classes`` under ``root``, and the classes that have no image there."""
    files: list[Path] = []
    labels: list[int] = []
    empty = []
    for i, c in enumerate(classes):
        imgs = _images(root / c)
        empty += [] if imgs else [c]
        imgs = imgs[:max_per_class] if max_per_class else imgs
        files += imgs
        labels += [i] * len(imgs)
    return files, labels, empty


def _scan_val(root: Path, train_root: Path, classes: list[str],
              max_per_class: int | None) -> tuple[list[Path], list[int]]:
    """The validation folder, labelled by the training folder's classes. A class only it has is an
    error (its images would be dropped, and the accuracy would silently count the rest only); a
    class it lacks is legitimate (a small validation set), and said."""
    counts = {c: len(_images(root / c)) for c in _class_folders(root, "data.val_path") if c not in classes}
    extra = [c for c, n in counts.items() if n]  # an empty folder drops nothing
    if extra:
        n = sum(counts.values())
        more = f" and {len(extra) - 8} more" if len(extra) > 8 else ""
        raise DataError(
            f"the validation folder {root} has {len(extra)} class(es) the training folder {train_root} lacks: "
            f"{', '.join(extra[:8])}{more} ({n} images): a model trained on the training folder's {len(classes)} "
            "classes cannot be scored on them",
            hint="add the class to the training folder (data.path), or remove it from the validation folder "
            "(data.val_path)",
        )
    files, labels, empty = _scan(root, classes, max_per_class)
    if len(empty) == len(classes):
        raise DataError(f"the validation folder {root} has no images of the training folder's classes",
                        hint=f"layout: {root}/<class_name>/<image>.png, with the class names of {train_root}")
    if empty:
        more = f" and {len(empty) - 8} more" if len(empty) > 8 else ""
        log.warning("the validation folder %s has no images of %d of the %d classes (%s%s): accuracy is measured "
                    "on the other classes only", root, len(empty), len(classes), ", ".join(empty[:8]), more)
    return files, labels


def _listing(files: list[Path]) -> list[tuple[str, int]]:
    return [(str(f), f.stat().st_size) for f in files]


@DATASETS.register("imagefolder", params=ImageFolderParams, help="your folder of class sub-folders")
def load_imagefolder(cfg: DataConfig, p: ImageFolderParams, prep: Preprocess) -> Data:
    classes = _class_folders(p.path, "data.path")
    files, labels, empty = _scan(p.path, classes, p.max_per_class)
    if empty:
        raise DataError(f"class folder {p.path / empty[0]} has no images ({', '.join(EXTENSIONS)})",
                        hint="put the class's images in it, or remove the folder")
    y = torch.tensor(labels, dtype=torch.long)
    if p.val_path is not None:
        vfiles, vlabels = _scan_val(p.val_path, p.path, classes, p.max_per_class)
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
