"""Whether INT8 weights must use 7 bits so x86 CPUs without VNNI do not saturate.

On x86 CPUs without VNNI (AVX2, AVX-512 before Cascade Lake), OpenVINO/oneDNN multiply
unsigned 8-bit activations by signed 8-bit weights with ``vpmaddubsw``, which adds pairs
of products into 16 bits: 255·127·2 overflows and the convolution saturates. Measured
here (AMD EPYC, AVX2, no VNNI): a digits ResNet lost 2.8 accuracy points in OpenVINO
against the same Q/DQ file in ONNX Runtime; with 7-bit weights (NNCF's ``overflow_fix``)
the two agree. VNNI CPUs, ARM and GPUs accumulate in 32 bits and do not need it, and it
costs one bit of weight resolution, so ``auto`` enables it only where it matters (the
decision is made once per run in edgekd/engines/plan/deployment.py).
"""

from __future__ import annotations

from pathlib import Path

from edgekd.core.hostinfo import CPUINFO, cpuinfo_field

VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def host_has_vnni(cpuinfo: Path = CPUINFO) -> bool | None:
    """True/False on Linux x86 from the CPU flags; None where they cannot be read (then
    NNCF's default stands) or there is no x86 flags line (ARM: no vpmaddubsw path)."""
    flags = cpuinfo_field("flags", cpuinfo)
    return None if flags is None else bool(VNNI_FLAGS & set(flags.split()))
