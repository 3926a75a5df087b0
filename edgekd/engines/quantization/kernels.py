"""Which fake-quantize kernels NNCF runs: its reference PyTorch functions, in eager mode.

By default NNCF compiles a C++ (or CUDA) extension for its fake-quantizers on first use.
On a small fresh machine that compile can outlast NNCF's own 60 s load timeout, so the
first ``edgekd compress`` would fail at the quantize stage; it also needs a compiler (and
nvcc for CUDA) on the box. NNCF's fallback, its reference functions, goes through
``torch.compile``, which spends the first QAT epoch compiling with Inductor. The same
reference functions called eagerly need no compiler at all and train QAT at least as fast
as the compiled extension (benchmarks/RESULTS.md, "The demo end to end").
``EDGEKD_NNCF_COMPILED_KERNELS=1`` gives NNCF's default back (e.g. for the CUDA extension
on a GPU box with nvcc).
"""

from __future__ import annotations

import logging
import os

COMPILED_VAR = "EDGEKD_NNCF_COMPILED_KERNELS"
log = logging.getLogger(__name__)


def _eager_reference():
    from nncf.torch.quantization.reference import torch_executor

    class EagerReferenceKernels:
        """NNCF's reference fake-quantize functions, without the torch.compile wrapper."""

        Quantize_forward = staticmethod(torch_executor.forward)
        Quantize_backward = staticmethod(torch_executor.backward)

    return EagerReferenceKernels


def select_kernels() -> str:
    """Point NNCF's CPU and CUDA kernel slots at the eager reference functions (idempotent).

    Returns ``"reference"`` or ``"compiled"`` for the report. ``_loaded_namespace`` is
    NNCF's lazily-filled slot for the built extension; if a future NNCF renames it,
    NNCF's default behaviour is left alone rather than failing the run.
    """
    if os.environ.get(COMPILED_VAR, "") not in ("", "0"):
        return "compiled"
    from nncf.torch.extensions import ExtensionNamespace
    from nncf.torch.quantization import extensions

    # CUDA's slot is a stub that raises on any attribute where there is no GPU: skip it
    slots = [s for s in (extensions.QuantizedFunctionsCPU, extensions.QuantizedFunctionsCUDA)
             if isinstance(s, ExtensionNamespace)]
    if not all("_loaded_namespace" in vars(s) for s in slots):
        log.warning("this NNCF has no known kernel slot; it will compile its extension on first use")
        return "compiled"
    kernels = _eager_reference()
    for slot in slots:
        if slot._loaded_namespace is None:
            slot._loaded_namespace = kernels
    return "reference"
