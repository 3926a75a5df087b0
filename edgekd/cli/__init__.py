"""The `edgekd` command: a thin layer over the Python API.

Parses arguments, calls ``edgekd.api``, prints, and maps errors to exit codes:
0 ok · 1 unexpected bug · 2 config/usage · 3 data · 4 model/checkpoint · 5 training ·
6 pruning · 7 quantization · 8 export · 9 bench · 10 profile/target · 11 search ·
12 run directory · 13 CI gate failed (report written) · 130 interrupted. Errors print one
message naming the problem and the fix.

Progress goes to stderr with bars on a terminal; when stdout is not a terminal (CI, ``| tee``)
it goes to stdout as plain lines, one per stage and per epoch, so the log has it.
"""

from edgekd.cli import commands, profiles  # noqa: F401 - each registers its commands on the app
from edgekd.cli.common import app, err, out

__all__ = ["app", "err", "main", "out"]


def main() -> None:
    app()
