"""The model artifact: how every stage hands a model to the next without pickling code.

A folder with ``model.json`` (plain data: architecture name and kwargs, class count,
input preprocessing, the pruning history and the quantizer config) and
``weights.safetensors``. Loading rebuilds the base architecture, replays the pruning
(torch-pruning's dependency graph prunes the same channels again) and the quantizer
insertion (NNCF's config), then loads plain tensors. Why not ``torch.save(model)``:
that pickles classes, which ``weights_only=True`` rightly refuses (PyTorch's
``torch.load(weights_only=True)`` documentation; torch-pruning's ``tp.state_dict`` stores
module classes too).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import ModelError
from edgekd.core.rundir import atomic_write_json
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_state_dict, save_state_dict

FORMAT = "edgekd-model/1"


@dataclass
class ModelSpec:
    model: str
    num_classes: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)  # preprocessing, incl. "size"
    pruning_history: list[Any] | None = None
    quantization: dict[str, Any] | None = None  # {"method":..., "nncf_config": {...}}
    role: str = "student"  # teacher | student | pruned | quantized
    info: dict[str, Any] = field(default_factory=dict)  # metrics at save time, for people

    @property
    def input_size(self) -> int:
        return int(self.input.get("size", [32, 32])[0])

    def example_input(self, batch: int = 1) -> torch.Tensor:
        s = self.input_size
        return torch.randn(batch, 3, s, s)


def save_model(model: nn.Module, spec: ModelSpec, folder: Path) -> Path:
    """Write ``folder/model.json`` and ``folder/weights.safetensors``; returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(model.state_dict(), folder / "weights.safetensors", {"format": FORMAT})
    atomic_write_json(folder / "model.json", {"format": FORMAT, **asdict(spec)})
    return folder


def read_spec(folder: Path) -> ModelSpec:
    path = Path(folder) / "model.json"
    if not path.exists():
        raise ModelError(f"no model artifact at {folder} (model.json missing)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is corrupt: {exc}") from None
    if raw.pop("format", None) != FORMAT:
        raise ModelError(f"{path} is not an {FORMAT} artifact")
    return ModelSpec(**raw)


def build_from_spec(spec: ModelSpec) -> nn.Module:
    """The architecture the spec describes (pruned and quantized as recorded), random weights."""
    model = build_model(spec.model, spec.num_classes, spec.kwargs).eval()
    if spec.pruning_history:
        from edgekd.engines.models.pruned import replay_pruning

        replay_pruning(model, spec.pruning_history, spec.example_input())
    if spec.quantization:
        from edgekd.engines.models.quantized import restore_quantizers
        from edgekd.engines.quantization.bn_fold import fold_batchnorm

        if spec.quantization.get("folded_batchnorm"):
            fold_batchnorm(model, spec.quantization["folded_batchnorm"])  # the structure; weights load after
        model = restore_quantizers(model, spec.quantization["nncf_config"])
    return model


def load_model(folder: Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild a saved model exactly, reading tensors only."""
    spec = read_spec(folder)
    model = build_from_spec(spec)
    state = read_state_dict(Path(folder) / "weights.safetensors", what="model weights")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights in {folder} do not fit the recorded architecture: {exc}") from None
    return model.eval(), spec


def reload_outputs(model: nn.Module, folder: Path, example: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of ``model`` and of the artifact saved from it in ``folder``, on the same input.

    Both run on the CPU in FP32 (``model`` is moved there): on a GPU, TF32 convolutions and
    layout-dependent cuDNN algorithms differ by ~5e-4 between two copies of the same weights
    (seen on an H100), which would hide or fake a reload bug.
    """
    again, _ = load_model(folder)
    x = example.cpu()
    with torch.no_grad():
        return model.cpu().float().eval()(x), again(x)
