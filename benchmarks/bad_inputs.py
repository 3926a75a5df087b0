"""Bad inputs a new user hits, each run through the CLI: the exit code and the message it gets.

    python benchmarks/bad_inputs.py                 # every case, as real subprocesses; prints the table
    python benchmarks/bad_inputs.py --markdown out.md

Every case must end with its documented exit code, a message containing the expected
words, and no traceback. tests/test_bad_inputs.py runs the same cases (in-process for the
quick ones, the ones that train a model under ``-m slow``), so the table stays true in CI.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEACHER = {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}}
STUDENT = {"model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 16}}


def tiny(tmp: Path, **over) -> dict:
    cfg = {"name": "bad", "output_dir": str(tmp / "runs"), "seed": 0, "data": {"source": "digits", "image_size": 16},
           "teacher": {**TEACHER, "train": {"epochs": 2, "batch_size": 64}}, "student": dict(STUDENT),
           "stages": ["distill", "export", "bench", "report"], "distill": {"epochs": 1, "batch_size": 64},
           "bench": {"repeats": 3, "rounds": 1, "warmup": 1},
           # one or two epochs: accuracy is not what these cases are about, so no floor under the teacher
           # (with it, a case expecting exit 0 ends 13 whenever timing noise ships the 1-epoch student)
           "report": {"max_accuracy_drop": None}}
    cfg.update(over)
    return cfg


def write_yaml(tmp: Path, cfg: dict, name: str = "model.yaml") -> str:
    (tmp / name).write_text(yaml.safe_dump(cfg))
    return str(tmp / name)


def compress(tmp: Path, cfg: dict | str, *extra: str) -> list[str]:
    path = cfg if isinstance(cfg, str) else write_yaml(tmp, cfg)
    return ["compress", path, "--target", "host", "--quiet", *extra]


def _state_dict_file(tmp: Path, num_classes: int, name: str) -> str:
    import torch

    from edgekd.engines.models.build import build_model

    torch.save(build_model(TEACHER["model"], num_classes, TEACHER["kwargs"]).state_dict(), tmp / name)
    return str(tmp / name)


def _folder(tmp: Path, extra_val_class: bool = False, corrupt: bool = False) -> str:
    from PIL import Image

    root = tmp / "imgs"
    for split, n in (("train", 6), ("val", 3)):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (20 + i, 18), (40 * i, 100 if c == "cat" else 200, 30)).save(root / split / c / f"{i}.png")
    if extra_val_class:
        (root / "val" / "fox").mkdir()
        for i in range(2):
            Image.new("RGB", (20, 20)).save(root / "val" / "fox" / f"{i}.png")
    if corrupt:
        (root / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return str(root)


def _onnx_file(tmp: Path, name: str, batch_fixed: bool = False) -> str:
    import torch

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(4, 3)).eval()
    path = tmp / name
    if batch_fixed:  # as a plain torch.onnx.export writes it: no dynamic batch axis
        torch.onnx.export(m, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17)
        return str(path)
    from edgekd.engines.exporters.onnx_io import export_onnx

    export_onnx(m, torch.zeros(2, 3, 16, 16), path, 17)
    return str(path)


@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]
    code: int
    expect: str  # a piece of the message (case-insensitive)
    slow: bool = False  # trains a model: run under `pytest -m slow`


def _raising_entry(tmp: Path) -> list[str]:
    (tmp / "userfail_mod.py").write_text("def make(num_classes):\n    raise ValueError('bad width')\n")
    if str(tmp) not in sys.path:
        sys.path.insert(0, str(tmp))  # in-process runs; a subprocess finds it in its working folder
    sys.modules.pop("userfail_mod", None)
    return compress(tmp, tiny(tmp, teacher={"model": "userfail_mod:make", "train": {"epochs": 1}}))


def _unsafe_pickle(tmp: Path) -> list[str]:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp / "evil.pt").write_bytes(pickle.dumps({"state_dict": Evil()}))
    return compress(tmp, tiny(tmp, teacher={**TEACHER, "checkpoint": str(tmp / "evil.pt")}))


def _locked(tmp: Path) -> list[str]:
    """A second run on a folder a live process holds (flock)."""
    import fcntl

    run = tmp / "runs" / "bad"
    run.mkdir(parents=True)
    f = open(run / ".lock", "w")  # noqa: SIM115 - held for the life of this process (the case)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.write(f"{os.getpid()}\n")
    f.flush()
    _HELD.append(f)
    return compress(tmp, tiny(tmp), "--force")


def _resume_changed(tmp: Path) -> list[str]:
    from edgekd import api

    api.compress(tiny(tmp, stages=["distill"]), targets=["host"], quiet=True)
    argv = compress(tmp, tiny(tmp, stages=["distill"]), "--resume", "--set", "distill.epochs=2")
    return [a for a in argv if a != "--quiet"]  # the line is printed, not logged


def _truncated_safetensors(tmp: Path) -> list[str]:
    from safetensors.torch import save_file

    from edgekd.engines.models.build import build_model

    save_file(build_model(TEACHER["model"], 10, TEACHER["kwargs"]).state_dict(), tmp / "t.safetensors")
    data = (tmp / "t.safetensors").read_bytes()
    (tmp / "t.safetensors").write_bytes(data[: len(data) // 2])
    return compress(tmp, tiny(tmp, teacher={**TEACHER, "checkpoint": str(tmp / "t.safetensors")}))


_HELD: list = []

CASES: list[Case] = [
    Case("config file missing", lambda t: ["compress", str(t / "nope.yaml")], 2, "not found"),
    Case("YAML syntax error", lambda t: (t / "m.yaml").write_text("name: [a\n") and ["compress", str(t / "m.yaml")],
         2, "line"),
    Case("unknown top-level key (teachr:)",
         lambda t: compress(t, {**tiny(t), "teachr": {}}), 2, "did you mean 'teacher'"),
    Case("unknown key in --set (distil.epochs)",
         lambda t: compress(t, tiny(t), "--set", "distil.epochs=2"), 2, "did you mean 'distill'"),
    Case("wrong type (distill.epochs: many)",
         lambda t: compress(t, tiny(t, distill={"epochs": "many"})), 2, "distill.epochs"),
    Case("unknown loss name (kll)",
         lambda t: compress(t, tiny(t, distill={"loss": [{"name": "kll"}]})), 2, "did you mean 'kl'"),
    Case("unknown target", lambda t: compress(t, tiny(t))[:2] + ["--target", "jetson-tx9"], 10,
         "unknown target 'jetson-tx9'"),
    Case("profile with a runtime typo (tensortr)",
         lambda t: ["profiles", "show", _bad_profile(t)], 10, "did you mean 'tensorrt'"),
    Case("output folder under a file", lambda t: (t / "afile").write_text("x") and
         compress(t, tiny(t, output_dir=str(t / "afile" / "runs"))), 12, "is a file"),
    Case("run folder in use by another run", _locked, 12, "in use by another edgekd run"),
    Case("teacher checkpoint missing, no teacher.train",
         lambda t: compress(t, tiny(t, teacher={**TEACHER, "checkpoint": str(t / "missing.safetensors")})), 4,
         "not found"),
    Case("teacher checkpoint is not a checkpoint",
         lambda t: (t / "junk.pt").write_bytes(b"\x00junk" * 100) and
         compress(t, tiny(t, teacher={**TEACHER, "checkpoint": str(t / "junk.pt")})), 4, "junk.pt"),
    Case("teacher checkpoint with pickled code", _unsafe_pickle, 4, "evil.pt"),
    Case("teacher checkpoint for 5 classes, data has 10",
         lambda t: compress(t, tiny(t, teacher={**TEACHER, "checkpoint": _state_dict_file(t, 5, "five.pt")})), 4,
         "class"),
    Case("teacher entry point not importable",
         lambda t: compress(t, tiny(t, teacher={"model": "no_such_pkg:make", "train": {"epochs": 1}})), 4,
         "no_such_pkg"),
    Case("teacher entry point that raises", _raising_entry, 4, "teacher.model 'userfail_mod:make' raised ValueError"),
    Case("teacher.checkpoint under a file, to be trained",
         lambda t: (t / "afile").write_text("x") and compress(t, tiny(t, teacher={
             **TEACHER, "checkpoint": str(t / "afile" / "teacher.pt"), "train": {"epochs": 1}})), 2,
         "cannot write there"),
    Case("teacher checkpoint missing, teacher.train set: trained and saved (not an error)",
         lambda t: [a for a in compress(t, tiny(t, stages=["report"], teacher={
             **TEACHER, "checkpoint": str(t / "new.pt"), "train": {"epochs": 1}})) if a != "--quiet"], 0,
         "not found, training it"),
    Case("student larger than the teacher (a warning, not an error)",
         lambda t: [a for a in compress(t, tiny(t, stages=["distill"], student={
             "model": "resnet18", "kwargs": {"layers": [1, 1, 1, 1], "channels": [32, 64, 128, 256]}},
             distill={"epochs": 1, "batch_size": 64, "max_steps_per_epoch": 1})) if a != "--quiet"], 0,
         "is larger than the teacher"),
    Case("image folder missing",
         lambda t: compress(t, tiny(t, data={"source": "imagefolder", "path": str(t / "nope"), "image_size": 16})),
         3, "nope"),
    Case("validation folder with a class training lacks",
         lambda t: compress(t, tiny(t, data={"source": "imagefolder", "path": _folder(t, extra_val_class=True) + "/train",
                                             "val_path": str(t / "imgs" / "val"), "image_size": 16})), 3, "fox"),
    Case("bench: file missing", lambda t: ["bench", str(t / "none.onnx")], 9, "not found"),
    Case("bench: unknown suffix", lambda t: (t / "m.tflite").write_bytes(b"x") and ["bench", str(t / "m.tflite")], 9,
         "unknown model format"),
    Case("bench: truncated .onnx",
         lambda t: (t / "cut.onnx").write_bytes(Path(_onnx_file(t, "full.onnx")).read_bytes()[:200]) and
         ["bench", str(t / "cut.onnx")], 9, "not a readable ONNX model"),
    Case("bench: text file named .onnx", lambda t: (t / "g.onnx").write_text("garbage") and ["bench", str(t / "g.onnx")],
         9, "not a readable ONNX model"),
    Case("bench: --batch 4 on a batch-1 model (host)",
         lambda t: ["bench", _onnx_file(t, "b1.onnx", batch_fixed=True), "--batch", "4"], 9, "fixed at batch 1"),
    Case("bench: --batch 4 on a batch-1 model (predicted target)",
         lambda t: ["bench", _onnx_file(t, "b1.onnx", batch_fixed=True), "--batch", "4", "--target", "rpi"], 9,
         "fixed at batch 1"),
    Case("report: not a run folder", lambda t: ["report", str(t)], 12, "not an edgekd run"),
    # model families edgekd never saw, as module:function entry points (they train: slow)
    Case("ShuffleNetV2 student (torchvision) pruned",
         lambda t: compress(t, tiny(t, student={"model": "torchvision.models:shufflenet_v2_x0_5"},
                                    stages=["distill", "prune"], prune={"steps": 1, "finetune": {"epochs": 1}})), 6,
         "reshape between layer", slow=True),
    Case("VGG-11-BN student (torchvision) exported at 32 px",
         lambda t: compress(t, tiny(t, data={"source": "digits", "image_size": 32},
                                    student={"model": "torchvision.models:vgg11_bn"}, stages=["distill", "export"],
                                    distill={"epochs": 1, "batch_size": 64, "max_steps_per_epoch": 2}))[:-1], 0,
         "dynamo exporter", slow=True),
    Case("--resume after a config change says why", _resume_changed, 0,
         "distill: settings changed (distill.epochs 1 → 2)", slow=True),
    Case("teacher checkpoint: a truncated safetensors file", _truncated_safetensors, 4,
         "fix: copy the file again"),
    Case("distill.batch_size 100000 on 1 438 images (clamped, a warning)",
         lambda t: compress(t, tiny(t, distill={"epochs": 1, "batch_size": 100000})), 0,
         "batch_size 100000 is larger than the training set (1438 images): 128 instead", slow=True),
    Case("data.image_size: 1", lambda t: compress(t, tiny(t, data={"source": "digits", "image_size": 1})), 2,
         "data.image_size: Input should be greater than or equal to 8"),
    Case("--set with a bad value is blamed on the --set",
         lambda t: compress(t, tiny(t), "--set", "distill.epochs=-1"), 2, "--set distill.epochs=-1: distill.epochs"),
    Case("--set =3 (no key)", lambda t: compress(t, tiny(t), "--set", "=3"), 2, "no key before '='"),
    Case("-t jetsn (a typo)", lambda t: compress(t, tiny(t))[:2] + ["-t", "jetsn"], 10, "did you mean 'jetson'?"),
    Case("a latency budget no candidate reaches (refused before training)",
         lambda t: compress(t, tiny(t, stages=["search", "distill", "report"], student=None,
                                   search={"constraints": {"latency_ms": 0.00001}})),
         11, "cannot be reached on host by any candidate"),
]




def _bad_profile(tmp: Path) -> str:
    text = (ROOT / "profiles" / "jetson-orin-nano.yaml").read_text().replace("[tensorrt, onnxruntime]",
                                                                            "[tensortr, onnxruntime]")
    (tmp / "board.yaml").write_text(text)
    return str(tmp / "board.yaml")


def run_case(case: Case, tmp: Path, *, inprocess: bool = False) -> tuple[int, str, float]:
    """(exit code, output, seconds) of one case in a fresh folder."""
    argv = case.argv(tmp)
    t0 = time.perf_counter()
    try:
        if inprocess:
            from typer.testing import CliRunner

            from edgekd.cli import app

            r = CliRunner().invoke(app, argv)
            return r.exit_code, r.output, time.perf_counter() - t0
        p = subprocess.run([sys.executable, "-m", "edgekd", *argv], capture_output=True, text=True, cwd=tmp,
                           env={**os.environ, "COLUMNS": "200"}, timeout=900)
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0
    finally:
        while _HELD:
            _HELD.pop().close()


def verdict(case: Case, code: int, out: str) -> str | None:
    """None when the case behaved; else what was wrong."""
    flat = " ".join(out.split()).lower()
    if code != case.code:
        return f"exit {code}, expected {case.code}"
    if case.expect.lower() not in flat:
        return f"message lacks {case.expect!r}"
    if "traceback (most recent call last)" in flat:
        return "a traceback was shown"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    ap.add_argument("--only", nargs="+", help="run the cases whose names contain one of these words")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.only or any(w in c.name for w in args.only)]
    rows, failed = [], 0
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            code, out, secs = run_case(case, Path(tmp))
        bad = verdict(case, code, out)
        failed += bad is not None
        message = " ".join(out.split()).replace("|", "\\|")
        at = message.lower().find(case.expect.lower())  # the words the case expects, with their context
        first = message[max(0, at - 70):at + 90] if at >= 0 else message[:160]
        rows.append(f"| {case.name} | {code} | {'ok' if bad is None else 'FAIL: ' + bad} | {first} |")
        print(rows[-1], flush=True)
    table = "| bad input | exit | verdict | message (around the expected words) |\n|---|---|---|---|\n" + "\n".join(rows)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    print(f"\n{len(cases) - failed}/{len(cases)} cases behaved")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
