"""NNCF INT8 quantization: insert quantizers, calibrate them, describe them as plain data.

``nncf.quantize`` inserts fake-quantizers and initialises their ranges from calibration
batches (post-training quantization); training the returned model afterwards is NNCF's
QAT. Layers named in the ignored scope stay in float. A network with self-attention or
LayerNorm (transformers, hybrids, ConvNeXt) is given to NNCF as ``ModelType.TRANSFORMER``: NNCF then quantizes the inputs of the linear layers and
of the attention's q·kᵀ (SmoothQuant first moves activation outliers into the weights),
and leaves LayerNorm, Softmax, GELU and the residual adds in float. Without it NNCF 3.4
fails on a timm ViT and on ConvNeXt ("shape '[64]' is invalid for input of size 1"). The quantizer layout is saved as
``nncf.torch.get_config`` JSON beside the weights (see models/quantized.py for reload).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import QuantizationError
from edgekd.engines.quantization.kernels import select_kernels

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


@dataclass
class CalibrationLog:
    """What NNCF did, told by edgekd in one line instead of NNCF's own output."""

    images: int = 0  # images NNCF really ran through the model to set the ranges
    batches: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # NNCF's warnings, for the caller to show


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextlib.contextmanager
def nncf_output_folded(warnings: list[str]) -> Iterator[None]:
    """NNCF's own output, folded into edgekd's: its rich progress bars (drawn on stdout, where
    they would break ``--json`` and litter CI logs) are dropped, and its log records at
    WARNING and above are collected into ``warnings`` instead of printed by NNCF's handler."""
    from nncf.common.logging.logger import nncf_logger

    handlers, level = list(nncf_logger.handlers), nncf_logger.level
    nncf_logger.handlers = [_Collect(warnings)]
    nncf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        nncf_logger.handlers = handlers
        nncf_logger.setLevel(level)


def quantize(model: nn.Module, calibration: list[torch.Tensor], *, symmetric: bool, per_channel: bool,
             ignored: list[str], signed_activations: bool = False, overflow_fix: str = "first_layer_only",
             quiet: bool = False, log_to: CalibrationLog | None = None) -> nn.Module:
    """The model with calibrated INT8 fake-quantizers (PTQ result; train it for QAT).

    ``overflow_fix`` (enable | first_layer_only | disable): 7-bit weights, see quantization/overflow.py.
    ``signed_activations`` gives what TensorRT's explicit quantization accepts: signed INT8,
    zero point 0, activations per tensor (see exporters/tensorrt_rules.py).
    ``log_to`` receives the images NNCF really used and its warnings (else they go to the log).
    NNCF counts its ``subset_size`` in dataset items, here batches: passing images made it warn
    that the data set had fewer "samples" than asked for while it used every image.
    """
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
        QuantizationParameters,
    )

    nncf.set_log_level(logging.ERROR if quiet else logging.WARNING)  # NNCF resets its level (INFO) on import
    select_kernels()
    preset = nncf.QuantizationPreset.PERFORMANCE if symmetric else nncf.QuantizationPreset.MIXED
    advanced = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix(overflow_fix),
        weights_quantization_params=QuantizationParameters(per_channel=per_channel),
        # NNCF quantizes depthwise-conv inputs per channel by default; TensorRT takes per-tensor activations only
        activations_quantization_params=QuantizationParameters(per_channel=False) if signed_activations else None,
    )
    model.eval()
    scope = ignored_scope(model, ignored)
    record = log_to if log_to is not None else CalibrationLog()
    seen: set[int] = set()

    def count(item: tuple[int, torch.Tensor]) -> torch.Tensor:  # NNCF calls this per batch it runs
        seen.add(item[0])
        return item[1]

    t0 = time.perf_counter()
    try:
        with nncf_output_folded(record.warnings):
            qmodel = nncf.quantize(model, nncf.Dataset(list(enumerate(calibration)), count), preset=preset,
                                   subset_size=len(calibration), ignored_scope=scope, advanced_parameters=advanced,
                                   model_type=nncf.ModelType.TRANSFORMER if layer_normed(model) else None)
    except QuantizationError:
        raise
    except Exception as exc:  # NNCF raises many types (tracing, unsupported ops)
        raise QuantizationError(f"NNCF could not quantize the model: {type(exc).__name__}: {exc}",
                                hint="keep the failing layer in float with quantize.ignored_scope") from None
    record.seconds = time.perf_counter() - t0
    record.batches = len(seen)
    record.images = sum(calibration[i].shape[0] for i in seen)
    if log_to is None and not quiet:
        for w in record.warnings:
            log.warning("NNCF: %s", w)
    if signed_activations:
        make_signed(qmodel)
    return qmodel


def layer_normed(model: nn.Module) -> bool:
    """LayerNorm or torch's attention inside: a transformer, a hybrid or a ConvNeXt (timm's attention
    blocks always come with LayerNorm), quantized with NNCF's transformer patterns."""
    return any(isinstance(m, nn.LayerNorm | nn.MultiheadAttention) for m in model.modules())


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
