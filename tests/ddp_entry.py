"""Entry point for the DDP tests: ``edgekd`` as torchrun starts it, with two test-only hooks.

EDGEKD_TEST_AUDIT=<run folder>: ranks other than 0 record every write, rename, mkdir or
delete under that folder (Python audit events) into <audit file>.rank<N>, so a test can
check that only rank 0 writes. EDGEKD_TEST_FAIL_RANK=<N>: that rank raises a TrainingError
in the first epoch of the distill stage (after the teacher is recorded).
"""

from __future__ import annotations

import atexit
import json
import os
import sys


def _audit(root: str, out: str) -> None:
    seen: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args[0] is not None and isinstance(args[0], (str, bytes, os.PathLike)):
            mode = str(args[1] or "r")
            path = os.fsdecode(args[0])
            if any(c in mode for c in "wax+") and os.path.abspath(path).startswith(root):
                seen.append(f"open {path} {mode}")
        elif event in ("os.rename", "os.replace", "os.mkdir", "os.remove", "os.unlink", "shutil.rmtree",
                       "os.rmdir"):
            path = os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else ""
            if path and os.path.abspath(path).startswith(root):
                seen.append(f"{event} {path}")

    def save() -> None:
        with open(out, "w") as f:
            f.write(json.dumps(seen))

    sys.addaudithook(hook)
    atexit.register(save)


def main() -> None:
    rank = int(os.environ.get("RANK", "0"))
    root, out = os.environ.get("EDGEKD_TEST_AUDIT", ""), os.environ.get("EDGEKD_TEST_AUDIT_OUT", "")
    if root and out and rank != 0:
        _audit(os.path.abspath(root), f"{out}.rank{rank}")
    if os.environ.get("EDGEKD_TEST_FAIL_RANK") == str(rank):
        from edgekd.core.errors import TrainingError
        from edgekd.engines.train import trainer

        real = trainer._Loop.epoch

        def boom(self, epoch, advance):  # noqa: ANN001
            if self.label.startswith("distill"):
                raise TrainingError(f"injected failure on rank {rank}")
            return real(self, epoch, advance)

        trainer._Loop.epoch = boom
    from edgekd.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
