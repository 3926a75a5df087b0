"""Keep third-party usage telemetry off: edgekd promises no network at run time.

NNCF and OpenVINO's converter (``ov.convert_model``) report usage to Google Analytics
through ``openvino_telemetry`` unless the user opted out. On Linux each report forks the
(multi-GB, multi-threaded) training process and waits up to 3 s for a connection
that, on an offline edge box or CI runner, never comes. edgekd turns NNCF's own switch
on (``NNCF_CI``, read once when NNCF is imported; NNCF uses it for nothing else) and
converts ONNX with the runtime's ``Core.read_model``, which has no telemetry. A user who
wants to report to Intel sets ``EDGEKD_ALLOW_TELEMETRY=1``.
"""

from __future__ import annotations

import os

ALLOW_VAR = "EDGEKD_ALLOW_TELEMETRY"


def disable_telemetry() -> None:
    """Must run before the first ``import nncf`` (edgekd calls it when it is imported)."""
    if os.environ.get(ALLOW_VAR, "") not in ("", "0"):
        return
    os.environ.setdefault("NNCF_CI", "1")
