"""User-style image folders: mixed sizes and modes, streamed or in memory, and the device kit."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import STUDENT, TEACHER, tiny_config

import edgekd
from edgekd.core.config import DataConfig, TrainConfig
from edgekd.core.errors import ConfigError, DataError
from edgekd.engines.data import load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """JPEGs of mixed sizes around 40 px, a third of them PNG, grayscale or CMYK."""
    make = _module(ROOT / "examples" / "make_image_folder.py", "make_image_folder")
    return make.write_folder(tmp_path_factory.mktemp("shapes"), 192, 64, size=40, render=32, classes=4,
                             difficulty=0.1, odd=0.3)


def _cfg(folder: Path, **over) -> DataConfig:
    base = {"source": "imagefolder", "path": folder / "train", "val_path": folder / "val", "image_size": 24,
            "preprocess": {"resize": "crop", "mean": "imagenet", "std": "imagenet"}}
    return DataConfig(**{**base, **over})


def test_every_kind_of_file_loads_at_the_input_size(folder: Path) -> None:
    from PIL import Image

    modes = {Image.open(f).mode for f in (folder / "train").rglob("*.*")}
    sizes = {Image.open(f).size for f in (folder / "train").rglob("*.*")}
    assert {"RGB", "L", "CMYK"} <= modes and len(sizes) > 50
    assert any((folder / "train").rglob("*.png"))
    d = load_data(_cfg(folder))
    assert d.in_memory and d.train_x.shape == (192, 3, 24, 24) and d.val_x.shape[0] == 64


def test_streaming_gives_the_in_memory_batches_and_accuracy(folder: Path) -> None:
    mem = load_data(_cfg(folder))
    stream = load_data(_cfg(folder, stream=True, workers=2))
    assert not stream.in_memory and stream.workers == 2
    assert stream.preprocess == mem.preprocess and stream.fingerprint() == mem.fingerprint()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for (i1, x1, y1), (i2, x2, y2) in zip(mem.train_epoch(32, g1), stream.train_epoch(32, g2), strict=True):
        assert torch.equal(i1, i2) and torch.equal(x1, x2) and torch.equal(y1, y2)  # same order, same pixels
    assert torch.equal(mem.val_images()[0], stream.val_images()[0])
    runs = []
    for d in (mem, stream):
        torch.manual_seed(0)
        model = build_model(STUDENT["model"], 4, STUDENT["kwargs"])
        cfg = TrainConfig(epochs=3, batch_size=16, optimizer={"lr": 0.1}, loss=[{"name": "ce"}])
        runs.append(train(model, d, cfg, seed=0))
    losses = [[h["train_loss"] for h in r.history] for r in runs]
    assert losses[0][-1] < losses[0][0]  # it learned
    assert losses[1] == pytest.approx(losses[0], rel=1e-3) and abs(runs[0].best_accuracy - runs[1].best_accuracy) <= 1.0


def test_auto_streams_above_the_threshold_and_crops_randomly(folder: Path) -> None:
    d = load_data(_cfg(folder, stream_threshold_mb=1))  # 256 images decoded at 24 px: 0.42 MB, kept in memory
    assert d.in_memory
    d = load_data(_cfg(folder, image_size=48, stream_threshold_mb=1))  # 1.7 MB: streamed
    assert not d.in_memory
    idx, x, y = next(iter(d.train_epoch(16, torch.Generator().manual_seed(0), crop_scale=(0.3, 1.0))))
    assert x.shape == (16, 3, 48, 48) and x.dtype == torch.uint8
    mem = load_data(_cfg(folder))
    model = build_model(STUDENT["model"], 4, STUDENT["kwargs"])
    with pytest.raises(ConfigError, match="crop_scale needs images streamed"):
        train(model, mem, TrainConfig(epochs=1, augment={"crop_scale": [0.3, 1.0]}, loss=[{"name": "ce"}]))


def test_an_unreadable_file_is_named_when_streamed_or_skipped_by_policy(folder: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "f"
    shutil.copytree(folder, copy)
    bad = next((copy / "train").rglob("*.jpg"))
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    d = load_data(_cfg(copy, stream=True, workers=0))
    with pytest.raises(DataError, match=rf"cannot read image .*{bad.name}"):
        for _ in d.train_epoch(64, torch.Generator().manual_seed(0)):
            pass
    d = load_data(_cfg(copy, stream=True, workers=0, skip_bad_images=True))
    seen = sum(len(y) for _, _, y in d.train_epoch(64, torch.Generator().manual_seed(0)))
    assert seen == 191  # three batches of 64, one image short
    with pytest.raises(DataError, match=rf"cannot read image .*{bad.name}"):
        load_data(_cfg(copy))


def test_kit_preprocessing_matches_edgekd_and_the_exported_teacher_scores_the_same_in_the_kit(
        folder: Path, tmp_path: Path) -> None:
    kit = _module(ROOT / "export" / "edgekd_kit.py", "edgekd_kit")
    from PIL import Image

    for prep in ({"resize": "crop", "crop_fraction": 0.8, "interpolation": "bicubic"},
                 {"resize": "squash", "crop_fraction": 0.9, "interpolation": "bilinear", "channels": "BGR"}):
        d = load_data(_cfg(folder, preprocess={**prep, "mean": "imagenet", "std": "imagenet"}))
        mine = np.stack([kit.preprocess_image(Image.open(f), d.preprocessing()) for f in _val_files(folder)])
        assert np.abs(mine - d.val_inputs()[0].numpy()).max() < 1e-6

    cfg = tiny_config(tmp_path, teacher={**TEACHER, "train": {"epochs": 4, "batch_size": 32}},
                      data={"source": "imagefolder", "path": str(folder / "train"), "val_path": str(folder / "val"),
                            "image_size": 24, "preprocess": {"resize": "crop", "mean": "imagenet", "std": "imagenet"}},
                      stages=["export"], export={"formats": []})
    report = edgekd.compress(cfg, ["host"], quiet=True)
    export = tmp_path / "tiny" / "export"
    meta = json.loads((export / "teacher.json").read_text())
    assert meta["preprocessing"]["resize"] == "crop" and meta["classes"] == sorted(meta["classes"])
    out = subprocess.run([sys.executable, str(export / "edgekd_kit.py"), "eval-images", str(export / "teacher.onnx"),
                          "--images", str(folder / "val")], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["accuracy"] == pytest.approx(report.model("teacher").accuracy, abs=1e-6)
    with np.load(export / "validation.npz") as z:
        assert z["images"].dtype == np.uint8 and json.loads(str(z["preprocessing"]))["crop_fraction"] == 0.875
        assert np.abs(kit.normalize(z["images"], meta["preprocessing"]) - z["inputs"]).max() < 1e-6


def _val_files(folder: Path) -> list[Path]:
    from edgekd.engines.data.imagefolder import EXTENSIONS

    classes = sorted(p.name for p in (folder / "val").iterdir())
    return [f for c in classes for f in sorted((folder / "val" / c).rglob("*")) if f.suffix.lower() in EXTENSIONS]


def test_random_crops_repeat_for_the_same_seed_and_skipped_files_keep_validation_aligned(
        folder: Path, tmp_path: Path) -> None:
    import shutil

    from edgekd.engines.train.evaluate import predict

    for workers in (0, 2):
        d = load_data(_cfg(folder, stream=True, workers=workers))
        a, b = ([x for _, x, _ in d.train_epoch(32, torch.Generator().manual_seed(7), crop_scale=(0.3, 1.0),
                                                max_steps=2)] for _ in range(2))
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        plain = next(iter(d.train_epoch(32, torch.Generator().manual_seed(7))))[1]
        assert not torch.equal(a[0], plain)  # the crops are real
    copy = tmp_path / "f"
    shutil.copytree(folder, copy)
    first = sorted((copy / "val" / sorted(p.name for p in (copy / "val").iterdir())[0]).iterdir())[1]
    first.write_bytes(b"not an image")
    d = load_data(_cfg(copy, stream=True, workers=0, skip_bad_images=True))
    model = build_model(STUDENT["model"], 4, STUDENT["kwargs"])
    logits, labels = predict(model, d, torch.device("cpu"), limit=20)
    x, y = d.val_inputs(20)
    assert len(logits) == len(x) == 20 and torch.equal(labels, y)


def test_crop_scale_on_in_memory_data_stops_before_the_teacher_is_trained(folder: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, data={"source": "imagefolder", "path": str(folder / "train"),
                                      "val_path": str(folder / "val"), "image_size": 24},
                      distill={"epochs": 1, "augment": {"crop_scale": [0.3, 1.0]}})
    with pytest.raises(ConfigError, match=r"distill.augment.crop_scale needs images streamed"):
        edgekd.compress(cfg, ["host"], quiet=True)
    assert not (tmp_path / "tiny" / "teacher" / "model").exists()
