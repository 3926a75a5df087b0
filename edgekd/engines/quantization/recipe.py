"""One INT8 recipe, typed: the quantize stage and the latency calibration zoo both apply it.

The recipe turns the preset into its settings (symmetric? signed activations?) once, so
no reader splits a preset string into booleans of its own. It is stored in the quantized
model's spec (``quantization``) and read back with :meth:`QuantRecipe.from_record`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from edgekd.engines.quantization.nncf_int8 import CalibrationLog

PRESETS = ("tensorrt", "symmetric", "mixed")


@dataclass(frozen=True)
class QuantRecipe:
    preset: str  # tensorrt | symmetric | mixed (never auto: the plan resolves it)
    per_channel: bool = True
    overflow_fix: str = "first_layer_only"  # NNCF: enable | first_layer_only | disable
    ignored_scope: tuple[str, ...] = ()
    fold_batchnorm: bool = True

    @property
    def symmetric(self) -> bool:
        return self.preset != "mixed"

    @property
    def signed_activations(self) -> bool:
        """TensorRT's explicit quantization: signed INT8, zero point 0, per-tensor activations."""
        return self.preset == "tensorrt"

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> QuantRecipe | None:
        """The recipe a quantized model's spec recorded (None for a float model)."""
        if not record:
            return None
        return cls(str(record.get("preset", "mixed")), bool(record.get("per_channel", True)),
                   str(record.get("overflow_fix", "first_layer_only")), tuple(record.get("ignored_scope") or ()))


def apply_recipe(model: nn.Module, calibration: list[torch.Tensor], recipe: QuantRecipe, *,
                 quiet: bool = False, log_to: CalibrationLog | None = None) -> tuple[nn.Module, list[tuple[str, str]]]:
    """(model with calibrated fake-quantizers, the Conv-BN pairs folded first); ``log_to``
    receives what NNCF did (images used, its warnings)."""
    from edgekd.engines.quantization.bn_fold import fold_batchnorm
    from edgekd.engines.quantization.nncf_int8 import quantize

    folded = fold_batchnorm(model.eval()) if recipe.fold_batchnorm else []  # exact in eval mode
    qmodel = quantize(model, calibration, symmetric=recipe.symmetric, per_channel=recipe.per_channel,
                      ignored=list(recipe.ignored_scope), signed_activations=recipe.signed_activations,
                      overflow_fix=recipe.overflow_fix, quiet=quiet, log_to=log_to)
    return qmodel, folded
