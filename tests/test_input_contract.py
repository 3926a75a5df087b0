"""A teacher trained elsewhere: its preprocessing and class order resolved, a broken one refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TEACHER, tiny_config
from safetensors.torch import save_file

import edgekd
from edgekd.core.config import Config
from edgekd.core.errors import ModelError
from edgekd.engines.data import load_data
from edgekd.engines.data.input_contract import load_run_data, resolve_contract
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_record, read_state_dict

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PERM = [3, 7, 0, 9, 1, 5, 2, 8, 4, 6]  # the outside script's class i is digit PERM[i]


def _config(tmp_path: Path, **over) -> Config:
    return Config.model_validate(tiny_config(tmp_path, **over))


def _dummy_checkpoint(path: Path, metadata: dict[str, str] | None = None) -> Path:
    save_file({"w": torch.zeros(1)}, str(path), metadata=metadata)
    return path


def test_contract_from_timm_pretrained_cfg_for_a_checkpoint_teacher(tmp_path: Path) -> None:
    ckpt = _dummy_checkpoint(tmp_path / "t.safetensors")
    teacher = {"model": "resnet18", "checkpoint": str(ckpt)}
    p = resolve_contract(_config(tmp_path, teacher=teacher, data={"source": "digits"})).preprocess
    # timm's own resolve_data_config for resnet18 (its default pretrained tag, a1_in1k)
    assert (p.size, p.resize, p.crop_fraction, p.interpolation) == (224, "crop", 0.95, "bicubic")
    assert (p.mean, p.std) == IMAGENET
    assert p.sources["mean"] == "timm pretrained_cfg of resnet18"
    # a size and a normalisation the config states win, the rest still comes from timm
    cfg = _config(tmp_path, teacher=teacher, data={"source": "digits", "image_size": 64,
                                                   "preprocess": {"mean": "dataset", "std": "dataset"}})
    p = resolve_contract(cfg).preprocess
    assert (p.size, p.interpolation, p.mean, p.std) == (64, "bicubic", None, None)
    assert p.sources["size"] == "config"
    # a timm tag with another recipe: torchvision's weights ported to timm
    p = resolve_contract(_config(tmp_path, teacher={**teacher, "model": "resnet18.tv_in1k"},
                                 data={"source": "digits"})).preprocess
    assert (p.crop_fraction, p.interpolation) == (0.875, "bilinear")


def test_contract_from_an_entry_points_pretrained_cfg(tmp_path: Path, monkeypatch) -> None:
    mod = tmp_path / "my_models.py"
    mod.write_text("import torchvision\n"
                   "def vgg(num_classes):\n"
                   "    m = torchvision.models.resnet18(num_classes=num_classes)\n"
                   "    m.pretrained_cfg = {'input_size': (3, 160, 160), 'interpolation': 'bilinear',\n"
                   "                        'crop_pct': 0.9, 'crop_mode': 'center',\n"
                   "                        'mean': (0.5, 0.5, 0.5), 'std': (0.5, 0.5, 0.5)}\n"
                   "    return m\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = _dummy_checkpoint(tmp_path / "t.safetensors")
    cfg = _config(tmp_path, teacher={"model": "my_models:vgg", "checkpoint": str(ckpt)}, data={"source": "digits"})
    p = resolve_contract(cfg).preprocess
    assert (p.size, p.crop_fraction, p.mean) == (160, 0.9, (0.5, 0.5, 0.5))


def test_checkpoint_record_wins_over_timm_and_config_over_both(tmp_path: Path) -> None:
    rec = {"size": [48, 48], "resize": "squash", "crop_fraction": 1.0, "interpolation": "nearest",
           "mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6], "channels": "BGR"}
    ckpt = _dummy_checkpoint(tmp_path / "t.safetensors", {"preprocess": json.dumps(rec)})
    teacher = {"model": "resnet18", "checkpoint": str(ckpt)}
    p = resolve_contract(_config(tmp_path, teacher=teacher, data={"source": "digits"})).preprocess
    assert (p.size, p.resize, p.interpolation, p.mean, p.channels) == (48, "squash", "nearest", (0.1, 0.2, 0.3), "BGR")
    assert p.sources["size"] == "teacher checkpoint (safetensors metadata)"
    p = resolve_contract(_config(tmp_path, teacher=teacher, data={
        "source": "digits", "image_size": 24, "preprocess": {"mean": "imagenet", "channels": "RGB"}})).preprocess
    assert (p.size, p.mean, p.std, p.channels) == (24, IMAGENET[0], (0.4, 0.5, 0.6), "RGB")


def test_a_recorded_squash_is_not_cropped_by_timms_config_below_it(tmp_path: Path) -> None:
    """The record says squash and no crop: timm's ViT crop_pct (0.9) must not crop the squashed image."""
    rec = {"size": [32, 32], "resize": "squash", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    ckpt = _dummy_checkpoint(tmp_path / "t.safetensors", {"preprocess": json.dumps(rec)})
    teacher = {"model": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 4}, "checkpoint": str(ckpt)}
    p = resolve_contract(_config(tmp_path, teacher=teacher, data={"source": "digits"})).preprocess
    assert (p.resize, p.crop_fraction, p.interpolation) == ("squash", 1.0, "bicubic")
    assert p.sources["crop_fraction"] == "default"
    # a crop the config states above the record still applies
    p = resolve_contract(_config(tmp_path, teacher=teacher, data={
        "source": "digits", "preprocess": {"crop_fraction": 0.9}})).preprocess
    assert (p.resize, p.crop_fraction) == ("squash", 0.9)


def test_teacher_trained_in_the_run_keeps_data_set_statistics(tmp_path: Path) -> None:
    data, _ = load_run_data(_config(tmp_path))  # no checkpoint: edgekd trains it, edgekd chooses its input
    assert data.preprocess.size == 16 and data.preprocess.resize == "squash"
    assert data.preprocess.sources["mean"] == "data set statistics"
    x, _ = data.val_inputs(400)
    assert abs(float(x.mean())) < 0.2  # normalised with its own statistics


@pytest.fixture(scope="module")
def outside_teacher(tmp_path_factory) -> tuple[Path, float]:
    """A tiny timm ResNet trained by a plain PyTorch loop on digits at 16 px, ImageNet-normalised,
    with its own class order (class i = digit PERM[i]); saved as a bare state_dict."""
    d = load_data(Config.model_validate(tiny_config(Path("."))).data)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    norm = lambda x: (x.float() / 255 - mean) / std  # noqa: E731
    to_script = torch.tensor([PERM.index(c) for c in range(10)])  # digit → the script's label
    torch.manual_seed(0)
    model = build_model(TEACHER["model"], 10, TEACHER["kwargs"])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(6):
        model.train()
        for i in torch.randperm(d.num_train).split(64):
            loss = torch.nn.functional.cross_entropy(model(norm(d.train_x[i])), to_script[d.train_y[i]])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(norm(d.val_x)).argmax(1) == to_script[d.val_y]).float().mean() * 100)
    out = tmp_path_factory.mktemp("outside") / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
    return out, acc


def _outside_cfg(tmp_path: Path, ckpt: Path, **teacher_over) -> dict:
    return tiny_config(tmp_path, teacher={**TEACHER, "checkpoint": str(ckpt), **teacher_over},
                       data={"source": "digits", "image_size": 16,
                             "preprocess": {"mean": "imagenet", "std": "imagenet"}},
                       stages=["distill", "report"], distill={"epochs": 1, "batch_size": 64})


def test_class_order_from_a_sidecar_is_mapped_and_the_teacher_reads_what_its_script_measured(
        tmp_path: Path, outside_teacher) -> None:
    ckpt, script_acc = outside_teacher
    assert script_acc > 80
    local = tmp_path / "teacher.safetensors"
    local.write_bytes(ckpt.read_bytes())
    (tmp_path / "teacher.json").write_text(json.dumps({"class_to_idx": {str(d): i for i, d in enumerate(PERM)}}))
    assert read_record(local)["classes"] == [str(d) for d in PERM]
    report = edgekd.compress(_outside_cfg(tmp_path, local, expected_accuracy=script_acc), ["host"], quiet=True)
    assert report.model("teacher").accuracy == pytest.approx(script_acc, abs=0.01)
    assert "renumbered to the teacher checkpoint's order" in " ".join(report.data["notes"])
    assert report.data["preprocess"]["mean"] == list(IMAGENET[0])


def test_a_teacher_read_wrongly_stops_the_run_before_anything_is_distilled(tmp_path: Path, outside_teacher) -> None:
    ckpt, script_acc = outside_teacher  # no class record: the folder order mislabels every class
    with pytest.raises(ModelError, match=r"(?s)near chance.*normalisation.*class order.*resolution") as exc:
        edgekd.compress(_outside_cfg(tmp_path, ckpt), ["host"], quiet=True)
    assert exc.value.exit_code == 4
    assert not (tmp_path / "tiny" / "distill").exists()
    manifest = tmp_path / "tiny" / "manifest.json"
    assert not manifest.exists() or "distill" not in json.loads(manifest.read_text())["stages"]


def test_a_teacher_below_its_expected_accuracy_stops_the_run(tmp_path: Path, outside_teacher) -> None:
    ckpt, script_acc = outside_teacher
    (tmp_path / "teacher.json").write_text(json.dumps({"classes": [str(d) for d in PERM]}))
    local = tmp_path / "teacher.safetensors"
    local.write_bytes(ckpt.read_bytes())
    cfg = _outside_cfg(tmp_path, local, expected_accuracy=100.0, accuracy_tolerance=0.0)
    cfg["data"]["preprocess"] = {"mean": "dataset", "std": "dataset"}  # not what the script used
    with pytest.raises(ModelError, match=r"below teacher.expected_accuracy 100%"):
        edgekd.compress(cfg, ["host"], quiet=True)


def test_class_names_that_differ_from_the_data_are_refused(tmp_path: Path, outside_teacher) -> None:
    ckpt, _ = outside_teacher
    local = tmp_path / "teacher.safetensors"
    save_file(read_state_dict(ckpt), str(local), metadata={"classes": json.dumps(list("abcdefghij"))})
    with pytest.raises(ModelError, match=r"classes do not match the data's: only in the checkpoint \['a'"):
        edgekd.compress(_outside_cfg(tmp_path, local), ["host"], quiet=True)


def test_a_pt_teacher_checkpoint_that_edgekd_trains_is_a_torch_file_with_its_record(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, stages=["report"])
    cfg["teacher"]["checkpoint"] = str(tmp_path / "teacher.pt")
    cfg["teacher"]["train"]["epochs"] = 1
    edgekd.compress(cfg, ["host"], quiet=True)
    obj = torch.load(tmp_path / "teacher.pt", weights_only=True)  # what the suffix promises
    assert "state_dict" in obj and json.loads(obj["classes"]) == [str(i) for i in range(10)]
    rec = read_record(tmp_path / "teacher.pt")
    assert rec["preprocess"]["size"] == [16, 16] and rec["classes"][0] == "0"


def test_near_chance_floor_leaves_real_binary_and_ten_class_teachers_alone() -> None:
    from edgekd.stages.teacher import chance_floor

    assert chance_floor(10, 1000) == pytest.approx(19.0)  # 11.25% (the user's report) is refused
    assert chance_floor(2, 400) == pytest.approx(57.5)  # chance + 3 standard errors on 400 images
    assert chance_floor(2, 100_000) == pytest.approx(55.0)  # a 90% binary teacher passes
    assert chance_floor(1000, 50_000) < 11.0


def test_bgr_reverses_channels_after_normalising_with_rgb_statistics() -> None:
    from edgekd.engines.data.preprocess import Preprocess

    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    rgb = Preprocess(4, mean=IMAGENET[0], std=IMAGENET[1])
    bgr = Preprocess(4, mean=IMAGENET[0], std=IMAGENET[1], channels="BGR")
    assert torch.allclose(bgr.normalize(x), rgb.normalize(x).flip(1))


def test_a_checkpoint_record_that_holds_code_is_refused_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "t.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "classes": ["a"], "x": Path("a")}, bad)
    with pytest.raises(ModelError, match="refused to load teacher checkpoint"):
        read_record(bad)
    (tmp_path / "u.json").write_text("[1, 2]")
    _dummy_checkpoint(tmp_path / "u.safetensors")
    with pytest.raises(ModelError, match="not an object"):
        read_record(tmp_path / "u.safetensors")


def test_an_edgekd_trained_checkpoint_without_a_record_keeps_data_set_statistics(tmp_path: Path) -> None:
    ckpt = _dummy_checkpoint(tmp_path / "old.safetensors")  # written before records existed
    cfg = _config(tmp_path, teacher={**TEACHER, "checkpoint": str(ckpt), "train": {"epochs": 1}})
    p = resolve_contract(cfg).preprocess
    assert p.mean is None and p.size == 16 and p.sources["mean"] == "data set statistics"


def test_the_cli_exits_4_naming_the_input_and_claims_nothing_was_kept(tmp_path: Path, outside_teacher) -> None:
    import yaml
    from typer.testing import CliRunner

    from edgekd.cli import app

    ckpt, _ = outside_teacher
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump(_outside_cfg(tmp_path, ckpt)))
    r = CliRunner().invoke(app, ["compress", str(cfg), "--target", "host", "--quiet"])
    out = " ".join(r.output.split())
    assert r.exit_code == 4 and "near chance" in out and "mean/std imagenet" in out
    assert "finished stages" not in out  # nothing finished: no --resume advice


def _margin_folder(root: Path, per_class: int, seed: int) -> None:
    """Wide and tall JPEGs whose class is the colour of a band along one short edge: squashed, the
    band is there; shorter side + centre crop cuts it away."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30)}
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            wide = rng.random() < 0.5
            w, h = (64, 32) if wide else (32, 64)
            img = rng.integers(90, 140, size=(h, w, 3), dtype=np.uint8)
            band = 10  # a band of the class colour along one short edge
            if wide:
                img[:, :band] = rgb if rng.random() < 0.5 else img[:, :band]
                if not (img[:, :band] == rgb).all():
                    img[:, w - band:] = rgb
            else:
                img[:band] = rgb if rng.random() < 0.5 else img[:band]
                if not (img[:band] == rgb).all():
                    img[h - band:] = rgb
            Image.fromarray(img).save(root / name / f"{i}.jpg", quality=95)


def test_a_guessed_contract_is_verified_on_the_teacher_and_the_best_is_used(tmp_path: Path) -> None:
    """A resnet a plain script trained on images squashed to 24 px with ImageNet statistics, handed
    over as a bare safetensors file: timm's resnet18 config (shorter side + crop 0.95, bicubic) is a
    guess that cuts away what the classes differ in. Read under every plausible contract, the
    script's own one wins and the teacher reads within 0.5 points of the script's figure."""
    from edgekd.core.config import TrainConfig
    from edgekd.engines.train.trainer import train

    _margin_folder(tmp_path / "train", 60, 0)
    _margin_folder(tmp_path / "val", 20, 1)
    data_cfg = {"source": "imagefolder", "path": str(tmp_path / "train"), "val_path": str(tmp_path / "val"),
                "image_size": 24}
    truth = {"resize": "squash", "crop_fraction": 1.0, "interpolation": "bilinear", "mean": "imagenet",
             "std": "imagenet"}
    script = Config.model_validate({"data": {**data_cfg, "preprocess": truth}, "teacher": dict(TEACHER)})
    data, _ = load_run_data(script, verify=False)
    torch.manual_seed(0)
    model = build_model(TEACHER["model"], data.num_classes, TEACHER["kwargs"])
    own = train(model, data, TrainConfig(epochs=12, batch_size=32, loss=[{"name": "ce"}], augment={"shift": 0}),
                seed=0).best_accuracy
    assert own > 85
    save_file(model.state_dict(), str(tmp_path / "bare.safetensors"))  # no record: the contract is unknown
    user = Config.model_validate({"data": data_cfg,
                                  "teacher": {**TEACHER, "checkpoint": str(tmp_path / "bare.safetensors")}})
    guessed, _ = load_run_data(user, verify=False)
    assert (guessed.preprocess.resize, guessed.preprocess.interpolation) == ("crop", "bicubic")  # timm's guess
    x, y = guessed.val_images()
    with torch.no_grad():
        read_guessed = 100.0 * float((model.eval()(guessed.normalize(x)).argmax(1) == y).float().mean())
    verified, notes = load_run_data(user)
    x, y = verified.val_images()
    with torch.no_grad():
        read = 100.0 * float((model.eval()(verified.normalize(x)).argmax(1) == y).float().mean())
    assert read_guessed < own - 10 and abs(read - own) <= 0.5, (read_guessed, read, own, notes)
    assert verified.preprocess.resize == "squash" and "verified on validation images" in \
        verified.preprocess.sources["resize"]
    assert any("were guessed, so the teacher was read on" in n for n in notes)
