"""Keep this thread's alternate signal stack as it was across a native call that changes it.

Why: OpenVINO's CPU plugin (2026.4, ``compile_model`` with ``PERFORMANCE_HINT: LATENCY``)
installs an alternate signal stack on the calling thread and later frees it. CPython
installs its handlers with ``SA_ONSTACK``, so the next signal with a Python handler
(Ctrl-C, or the SIGCHLD handler PyTorch's DataLoader installs) would be delivered on freed
memory and the kernel would kill edgekd with SIGSEGV (e.g. Ctrl-C after the bench stage, or
a subprocess exiting after a streamed data set was read). Restoring the previous state
(usually: no alternate stack) makes handlers run on the normal stack again.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@contextmanager
def keep_signal_stack() -> Iterator[None]:
    libc = _libc()
    before = _StackT()
    saved = libc is not None and libc.sigaltstack(None, ctypes.byref(before)) == 0
    try:
        yield
    finally:
        if saved:
            libc.sigaltstack(ctypes.byref(before), None)
