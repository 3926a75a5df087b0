"""Re-inserting NNCF quantizers from their plain-JSON config (no pickled modules)."""

from __future__ import annotations

from typing import Any

from torch import nn


def restore_quantizers(model: nn.Module, nncf_config: dict[str, Any]) -> nn.Module:
    """``model`` with the quantizers ``nncf_config`` describes; load the state_dict after."""
    import nncf.torch

    from edgekd.engines.quantization.kernels import select_kernels

    select_kernels()  # before the first fake-quantize call (no C++ build on first use)
    return nncf.torch.load_from_config(model, nncf_config)
