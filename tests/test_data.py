"""The three data sources, splits, batching and the corrupt-image error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.core.config import AugmentConfig, DataConfig
from edgekd.core.errors import DataError
from edgekd.engines.data import load_data
from edgekd.engines.data.bundle import DataBundle, augment
from edgekd.engines.data.preprocess import Preprocess


def test_digits_shapes_split_and_determinism() -> None:
    a = load_data(DataConfig(source="digits", image_size=24))
    b = load_data(DataConfig(source="digits", image_size=24))
    assert a.train_x.shape[1:] == (3, 24, 24) and a.train_x.dtype == torch.uint8
    assert a.num_classes == 10
    assert a.train_x.shape[0] + a.val_x.shape[0] == 1797
    assert abs(a.val_x.shape[0] / 1797 - 0.2) < 0.01
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    assert set(a.val_y.tolist()) == set(range(10))  # stratified: every class in val


def test_synthetic_is_deterministic_and_configurable() -> None:
    cfg = DataConfig(source="synthetic", image_size=16, num_classes=6, train_size=120, val_size=60, seed=3)
    a, b = load_data(cfg), load_data(cfg)
    assert torch.equal(a.train_x, b.train_x)
    assert a.num_classes == 6 and a.train_x.shape == (120, 3, 16, 16) and a.val_x.shape[0] == 60
    assert not torch.equal(a.train_x[:60], a.val_x)  # disjoint generator seeds
    other = load_data(DataConfig(source="synthetic", image_size=16, num_classes=6, train_size=120, val_size=60, seed=4))
    assert not torch.equal(a.train_x, other.train_x)


def test_synthetic_is_not_solved_by_mean_colour() -> None:
    """Colour carries no class information: a nearest-mean-colour classifier stays near chance."""
    d = load_data(DataConfig(source="synthetic", image_size=16, num_classes=6, train_size=1200, val_size=600))
    feats = lambda x: x.float().mean(dim=(2, 3))  # noqa: E731
    means = torch.stack([feats(d.train_x[d.train_y == c]).mean(0) for c in range(6)])
    pred = torch.cdist(feats(d.val_x), means).argmin(1)
    acc = (pred == d.val_y).float().mean().item()
    assert acc < 0.35  # chance is 0.167


def _write_folder(root: Path, classes: int = 3, per_class: int = 4) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            arr = (rng.random((20, 20, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(root / f"class{c}" / f"{i}.png")


def test_imagefolder_loads(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train")
    d = load_data(DataConfig(source="imagefolder", image_size=16, path=tmp_path / "train", val_fraction=0.25))
    assert d.class_names == ["class0", "class1", "class2"]
    assert d.train_x.shape[1:] == (3, 16, 16)
    assert d.train_x.shape[0] + d.val_x.shape[0] == 12


def test_imagefolder_corrupt_image_is_named(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train")
    bad = tmp_path / "train" / "class1" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"(?s)cannot read image .*broken\.png") as exc:
        load_data(DataConfig(source="imagefolder", path=tmp_path / "train"))
    assert "skip_bad_images" in str(exc.value)
    d = load_data(DataConfig(source="imagefolder", path=tmp_path / "train", skip_bad_images=True))
    assert d.train_x.shape[0] + d.val_x.shape[0] == 12


def test_imagefolder_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="image folder not found"):
        load_data(DataConfig(source="imagefolder", path=tmp_path / "nope"))
    (tmp_path / "x" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images"):
        load_data(DataConfig(source="imagefolder", path=tmp_path / "x"))


def test_a_validation_class_the_training_folder_lacks_is_an_error(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train", classes=2)
    _write_folder(tmp_path / "val", classes=3, per_class=2)  # class2 exists in val only
    (tmp_path / "val" / "empty_extra").mkdir()  # an empty folder drops nothing: not counted
    cfg = DataConfig(source="imagefolder", image_size=16, path=tmp_path / "train", val_path=tmp_path / "val")
    with pytest.raises(DataError, match=r"has 1 class\(es\) the training folder .*train lacks: class2 \(2 images\)") as exc:
        load_data(cfg)
    assert exc.value.exit_code == 3
    assert "add the class to the training folder (data.path), or remove it from the validation folder" in exc.value.hint
    import shutil

    shutil.rmtree(tmp_path / "val" / "class2")
    assert load_data(cfg).val_x.shape[0] == 4


def test_a_validation_folder_without_some_classes_is_only_a_warning(tmp_path: Path, caplog) -> None:
    _write_folder(tmp_path / "train", classes=3)
    _write_folder(tmp_path / "val", classes=2, per_class=2)  # no class2 in val
    (tmp_path / "val" / "class1" / "0.png").unlink()
    (tmp_path / "val" / "class1" / "1.png").unlink()  # an empty class folder counts as missing
    with caplog.at_level("WARNING", logger="edgekd.engines.data.imagefolder"):
        d = load_data(DataConfig(source="imagefolder", image_size=16, path=tmp_path / "train",
                                 val_path=tmp_path / "val"))
    assert d.class_names == ["class0", "class1", "class2"] and d.val_y.tolist() == [0, 0]
    assert "has no images of 2 of the 3 classes (class1, class2)" in caplog.text
    for f in (tmp_path / "val" / "class0").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="has no images of the training folder's classes"):
        load_data(DataConfig(source="imagefolder", image_size=16, path=tmp_path / "train", val_path=tmp_path / "val"))


def test_augment_shifts_but_keeps_content() -> None:
    x = torch.zeros(8, 3, 8, 8, dtype=torch.uint8)
    x[:, :, 3:5, 3:5] = 255
    g = torch.Generator().manual_seed(0)
    y = augment(x, AugmentConfig(shift=2), g)
    assert y.shape == x.shape
    assert torch.all(y.float().sum(dim=(1, 2, 3)) == x.float().sum(dim=(1, 2, 3)))  # 2-px shift keeps the blob
    assert not torch.equal(y, x)


def test_augment_under_ddp_draws_for_the_global_batch() -> None:
    """Each rank's part is augmented as one process augments those images of the whole batch,
    and every rank's generator ends where one process's does (the next epoch's order agrees)."""
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    cfg = AugmentConfig(shift=2, hflip=True)
    g1 = torch.Generator().manual_seed(0)
    whole = augment(x, cfg, g1)
    for rank in (0, 1):
        g = torch.Generator().manual_seed(0)
        part = augment(x[rank::2], cfg, g, shard=(rank, 2), global_batch=10)
        assert torch.equal(part, whole[rank::2])
        assert torch.equal(g.get_state(), g1.get_state())


def test_train_epoch_covers_each_image_once_and_drops_the_ragged_batch() -> None:
    x, y = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 1, 1), torch.arange(10)
    d = DataBundle("t", x, y, x[:2], y[:2], [str(i) for i in range(10)], Preprocess(1, mean=(0,) * 3, std=(1,) * 3))
    seen = torch.cat([yb for _, _, yb in d.train_epoch(3, torch.Generator().manual_seed(0))])
    assert len(seen) == 9 and len(set(seen.tolist())) == 9  # 3 full batches, no repeats
    assert len(list(d.train_epoch(3, torch.Generator().manual_seed(0), max_steps=2))) == 2
