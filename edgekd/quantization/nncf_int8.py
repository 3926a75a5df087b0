"""NNCF INT8 quantization: insert quantizers, calibrate them, describe them as plain data.

``nncf.quantize`` inserts fake-quantizers and initialises their ranges from calibration
batches (post-training quantization); training the returned model afterwards is NNCF's
QAT. Layers named in the ignored scope stay in float. The quantizer layout is saved as
``nncf.torch.get_config`` JSON beside the weights (see models/quantized.py for reload).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import logging
import re
import sys
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import QuantizationError
from edgekd.quantization.kernels import select_kernels

log = logging.getLogger(__name__)


def ignored_scope(model: nn.Module, patterns: list[str]):
    """An ``nncf.IgnoredScope`` for module names (``layer1.0.conv1``, ``classifier``, globs)."""
    import nncf

    names = [n for n, _ in model.named_modules() if n]
    regexes = []
    for pat in patterns:
        hits = [n for n in names if n == pat or fnmatch.fnmatchcase(n, pat)]
        if not hits:
            import difflib

            raise QuantizationError(f"quantize.ignored_scope: no layer named {pat!r}",
                                    hint=f"did you mean {difflib.get_close_matches(pat, names, n=3)}? "
                                    "names are model.named_modules() names")
        regexes += [f"^{re.escape(h.replace('.', '/'))}/" for h in hits]  # NNCF names: module path with '/'
    return nncf.IgnoredScope(patterns=regexes, validate=False) if regexes else None


def quantize(model: nn.Module, calibration: list[torch.Tensor], *, symmetric: bool, per_channel: bool,
             ignored: list[str], signed_activations: bool = False, overflow_fix: str = "first_layer_only",
             quiet: bool = False) -> nn.Module:
    """The model with calibrated INT8 fake-quantizers (PTQ result; train it for QAT).

    ``overflow_fix`` (enable | first_layer_only | disable): 7-bit weights, see quantization/overflow.py.
    ``signed_activations`` gives what TensorRT's explicit quantization accepts: signed INT8,
    zero point 0, activations per tensor (see exporters/tensorrt_rules.py).
    """
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
        QuantizationParameters,
    )

    nncf.set_log_level(logging.ERROR if quiet else logging.INFO)  # NNCF resets its level on import
    select_kernels()
    preset = nncf.QuantizationPreset.PERFORMANCE if symmetric else nncf.QuantizationPreset.MIXED
    advanced = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix(overflow_fix),
        weights_quantization_params=QuantizationParameters(per_channel=per_channel),
        # NNCF quantizes depthwise-conv inputs per channel by default; TensorRT takes per-tensor activations only
        activations_quantization_params=QuantizationParameters(per_channel=False) if signed_activations else None,
    )
    size = sum(b.shape[0] for b in calibration)
    model.eval()
    scope = ignored_scope(model, ignored)
    # NNCF draws its own progress bars on stdout: keep stdout clean (``--json``), silence them when quiet
    sink = io.StringIO() if quiet else sys.stderr
    try:
        with contextlib.redirect_stdout(sink):
            qmodel = nncf.quantize(model, nncf.Dataset(calibration), preset=preset, subset_size=size,
                                   ignored_scope=scope, advanced_parameters=advanced)
    except QuantizationError:
        raise
    except Exception as exc:  # NNCF raises many types (tracing, unsupported ops)
        raise QuantizationError(f"NNCF could not quantize the model: {type(exc).__name__}: {exc}",
                                hint="keep the failing layer in float with quantize.ignored_scope") from None
    if signed_activations:
        make_signed(qmodel)
    return qmodel


def make_signed(model: nn.Module) -> None:
    """Every quantizer signed (zero point 0, INT8), as TensorRT requires, before QAT adapts to it.

    NNCF's hardware configs reject ``signedness_to_force`` for activations, and its
    symmetric preset keeps post-ReLU activations unsigned (UINT8), which TensorRT refuses.
    Flipping the quantizers' ``signed`` flag halves the resolution of non-negative
    activations (the range is kept); QAT then trains with exactly what TensorRT will run,
    and the flag is saved in the state_dict (``signed_tensor``), so reloads keep it.
    """
    from nncf.torch.quantization.layers import BaseQuantizer

    for mod in model.modules():
        if isinstance(mod, BaseQuantizer):
            mod.signed = True


def quantizer_config(model: nn.Module) -> dict[str, Any]:
    """NNCF's description of the inserted quantizers, as JSON-safe plain data."""
    import nncf.torch

    return json.loads(json.dumps(nncf.torch.get_config(model)))


def quantized_layers(config: dict[str, Any]) -> list[str]:
    """Hook names of every quantizer (``pre_hooks.layer1/0/conv1/conv2d/0__1.0`` ...)."""
    return [h for st in config.get("compression_state", []) for h in st.get("hook_names_in_model", [])]


def calibration_batches(x: torch.Tensor, size: int, batch: int = 64) -> list[torch.Tensor]:
    n = min(size, x.shape[0])
    return [x[i : i + batch] for i in range(0, n, batch)]
