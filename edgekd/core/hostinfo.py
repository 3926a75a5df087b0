"""What this machine is, from /proc/cpuinfo (Linux): the CPU name for the report's
environment, the flags for decisions that depend on the instruction set."""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_field(name: str, cpuinfo: Path = CPUINFO) -> str | None:
    """The first ``name : value`` line of /proc/cpuinfo (Linux); None where there is none."""
    try:
        with cpuinfo.open() as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ":" in ln and ln.split(":", 1)[0].strip() == name), None)
    except OSError:
        return None


def host_channel_multiple(precision: str, cpuinfo: Path = CPUINFO) -> tuple[int, str]:
    """The channel block this CPU's convolution kernels use at ``precision``, and why.

    x86: ONNX Runtime's MLAS blocks channels by 8 (16 with AVX-512F) and oneDNN (OpenVINO)
    uses nChw8c / nChw16c likewise; INT8 accumulates in the same 32-bit lanes (8 per AVX2
    register, 16 per AVX-512 one). Arm: a 128-bit NEON register holds 4 FP32 lanes, and one
    SDOT reads 16 INT8 values. Unknown CPUs get 8.
    """
    flags = cpuinfo_field("flags", cpuinfo)
    if flags is not None:
        if "avx512f" in flags.split():
            return 16, "AVX-512: 16 32-bit lanes per register (oneDNN nChw16c, MLAS NCHWc block 16)"
        return 8, "x86 without AVX-512: 8 32-bit lanes per AVX2 register (oneDNN nChw8c, MLAS NCHWc block 8)"
    features = cpuinfo_field("Features", cpuinfo)
    if features is not None and "asimd" in features.split():
        if precision == "int8":
            return 16, "Arm NEON: one SDOT reads 16 INT8 values (4 lanes x 4)"
        return 4, "Arm NEON: 4 FP32 lanes per 128-bit register"
    return 8, "CPU flags unreadable: 8, the AVX2 block"
