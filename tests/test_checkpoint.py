"""Checkpoints are untrusted: only tensors are read, and mismatches are named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from edgekd.core.errors import ModelError
from edgekd.engines.models.artifact import ModelSpec, load_model, save_model
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import load_weights, read_state_dict, save_state_dict

KW = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EDGEKD_PWNED']}",))


def test_pickle_with_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EDGEKD_PWNED", str(marker))
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Payload()}, evil)
    model = build_model("resnet18", 10, KW)
    with pytest.raises(ModelError, match=r"(?s)refused to load .*evil.pt.*Python objects") as exc:
        load_weights(model, evil, num_classes=10)
    assert "safetensors" in str(exc.value)
    assert not marker.exists()  # the payload never ran


def test_state_dict_roundtrip_and_wrappers(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, KW)
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pt")
    other = build_model("resnet18", 10, KW)
    load_weights(other, tmp_path / "w.pt", num_classes=10)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model.eval()(x), other.eval()(x))
    save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    assert set(read_state_dict(tmp_path / "w.safetensors")) == set(model.state_dict())


def test_class_count_mismatch_is_explained(tmp_path: Path) -> None:
    save_state_dict(build_model("resnet18", 1000, KW).state_dict(), tmp_path / "imagenet.safetensors")
    with pytest.raises(ModelError, match=r"(?s)trained for 1000 classes .*data has 10 classes"):
        load_weights(build_model("resnet18", 10, KW), tmp_path / "imagenet.safetensors", num_classes=10)


def test_architecture_mismatch_and_corrupt_and_missing(tmp_path: Path) -> None:
    save_state_dict(build_model("resnet18", 10, KW).state_dict(), tmp_path / "small.safetensors")
    with pytest.raises(ModelError, match="does not match the configured architecture"):
        load_weights(build_model("resnet18", 10), tmp_path / "small.safetensors", num_classes=10)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="corrupt"):
        read_state_dict(tmp_path / "junk.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelError, match="not a readable safetensors"):
        read_state_dict(tmp_path / "junk.safetensors")
    with pytest.raises(ModelError, match="not found"):
        read_state_dict(tmp_path / "absent.pt")


def test_unknown_model_and_pretrained_refused() -> None:
    with pytest.raises(ModelError, match=r"(?s)unknown model 'resnet181'.*did you mean"):
        build_model("resnet181", 10)
    with pytest.raises(ModelError, match="never downloads"):
        build_model("resnet18", 10, {"pretrained": True})
    with pytest.raises(ModelError, match="cannot import"):
        build_model("no_such_pkg.mod:fn", 10)


def test_user_entry_points_that_fail_are_model_errors_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ep_models.py").write_text(
        "def make(num_classes, width=8):\n    raise ValueError('bad width')\n"
        "def no_module(num_classes):\n    return 'a string'\n")
    (tmp_path / "ep_syntax.py").write_text("def make(num_classes):\n    return (\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match=r"student.model 'ep_models:make' raised ValueError: bad width") as exc:
        build_model("ep_models:make", 7, {"width": 2}, what="student.model")
    assert exc.value.exit_code == 4 and "ep_models:make(num_classes=7, width=2)" in exc.value.hint
    assert isinstance(exc.value.__cause__, ValueError)  # kept for -v
    with pytest.raises(ModelError, match=r"raised TypeError: .*unexpected keyword argument 'depth'"):
        build_model("ep_models:make", 7, {"depth": 2})
    with pytest.raises(ModelError, match=r"'ep_models:no_module' returned str, not a torch.nn.Module"):
        build_model("ep_models:no_module", 7)
    with pytest.raises(ModelError, match=r"'ep_models:nothing': ep_models has no callable 'nothing'"):
        build_model("ep_models:nothing", 7)
    with pytest.raises(ModelError, match=r"teacher.model 'ep_syntax:make': importing 'ep_syntax' raised SyntaxError"):
        build_model("ep_syntax:make", 7, what="teacher.model")
    with pytest.raises(ModelError, match=r"model 'resnet18' raised TypeError: .*no_such_kwarg"):
        build_model("resnet18", 10, {"no_such_kwarg": 1})


def test_model_artifact_roundtrip(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, KW).eval()
    spec = ModelSpec("resnet18", 10, KW, {"size": [16, 16]})
    save_model(model, spec, tmp_path / "m")
    again, spec2 = load_model(tmp_path / "m")
    x = torch.randn(3, 3, 16, 16)
    assert torch.equal(model(x), again(x)) and spec2.kwargs == KW
