"""Does every stage pay on the target? The shipped file against the teacher and against what a
user gets without edgekd, measured side by side in one process.

    python benchmarks/pays.py --case digits                       # examples/digits.yaml, --target host
    python benchmarks/pays.py --case synthetic --small            # the hard generated set, reduced
    python benchmarks/pays.py --case digits --targets jetson-orin-nano raspberry-pi-5 \
        --speedup "{jetson-orin-nano: 2, default: 4}"                          # predicted picks

For ``host``: ``edgekd compress`` with the example's settings (default budgets: 4x faster than
the teacher on its best runtime), then, from the same trained teacher and without edgekd:

* **torch-pruning alone**: the teacher pruned by torch-pruning's MetaPruner (L2 magnitude)
  until its best host latency is at most the shipped file's, then plain fine-tuning (labels
  only) for the distill stage's epochs;
* **NNCF PTQ of the teacher**: ``nncf.quantize`` on 512 training images, exported to ONNX
  (Q/DQ) and converted to OpenVINO.

Every file is timed in ONNX Runtime and OpenVINO in interleaved rounds (medians) and
evaluated on every validation image in that runtime. For other targets the run's own
per-target picks and their predicted speed-ups over the teacher are listed.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402

import edgekd  # noqa: E402
from edgekd.core.config import Config, LossTerm, TrainConfig  # noqa: E402
from edgekd.engines.data.input_contract import load_run_data  # noqa: E402
from edgekd.engines.exporters.onnx_io import export_onnx  # noqa: E402
from edgekd.engines.latency.timing import summarize, time_calls, warm_up  # noqa: E402
from edgekd.engines.models.artifact import load_model  # noqa: E402
from edgekd.engines.runtimes.base import get_runtime  # noqa: E402
from edgekd.engines.train.trainer import train  # noqa: E402

SMALL_SYNTHETIC = {"train_size": 6000, "val_size": 2000}  # --small: about a third of the example's cost


def config_for(case: str, small: bool, out: Path, speedup: str | None = None) -> dict[str, Any]:
    cfg = yaml.safe_load((ROOT / "examples" / f"{case}.yaml").read_text())
    cfg["output_dir"] = str(out)
    if speedup is not None:  # e.g. "{jetson-orin-nano: 2, default: 4}": a GPU's batch-1 floor (README)
        cfg["search"].setdefault("constraints", {})["speedup"] = yaml.safe_load(speedup)
    if case == "synthetic":
        cfg["teacher"]["checkpoint"] = str(out / "synthetic-teacher.safetensors")
        if small:
            cfg["data"].update(SMALL_SYNTHETIC)
            cfg["name"] = "synthetic-small"
    return cfg


def runners(path: Path, threads: int | None) -> dict[str, Any]:
    """The file loaded in every host runtime that runs it."""
    out = {}
    names = ["openvino"] if path.suffix == ".xml" else ["onnxruntime", "openvino"]
    for name in names:
        b = get_runtime(name)
        if b.unavailable_reason() is None:
            out[name] = b.load(path, precision="fp32", threads=threads)
    return out


def accuracy_in(runner: Any, x: np.ndarray, y: np.ndarray) -> float:
    hits = 0
    for i in range(0, len(x), 64):
        logits = runner.run(x[i:i + 64])
        hits += int((np.asarray(logits).argmax(1) == y[i:i + 64]).sum())
    return round(100.0 * hits / len(x), 3)


def side_by_side(files: dict[str, Path], x: np.ndarray, y: np.ndarray, rounds: int = 5,
                 repeats: int = 60) -> list[dict[str, Any]]:
    """Every (file, runtime): accuracy on all validation images, batch-1 latency, interleaved rounds."""
    loaded = {(label, rt): r for label, p in files.items() for rt, r in runners(p, None).items()}
    one = x[:1]
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in loaded}
    for _ in range(rounds):
        for k, r in loaded.items():  # warmed before every block, as bench and the budget do
            warm_up(lambda r=r: r.run(one))
            samples[k] += time_calls(lambda r=r: r.run(one), repeats)
    return [{"file": label, "runtime": rt, "median_ms": round(summarize(samples[(label, rt)]).median_ms, 4),
             "accuracy": accuracy_in(r, x, y)} for (label, rt), r in loaded.items()]


def best_host_ms(model: torch.nn.Module, size: int) -> float:
    from edgekd.core.profiles import resolve_target
    from edgekd.engines.latency.budgets import best_latency

    return best_latency(model, resolve_target("host")[0], size).ms


def torch_pruning_alone(teacher: torch.nn.Module, data: Any, size: int, goal_ms: float, epochs: int,
                        batch: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """What a user does without edgekd: torch-pruning to the latency, then plain fine-tuning."""
    import torch_pruning as tp

    model = copy.deepcopy(teacher).train()
    example = torch.randn(1, 3, size, size)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.MagnitudeImportance(p=2),
                                  pruning_ratio=0.95, iterative_steps=60, ignored_layers=[last])
    steps = 0
    model.eval()
    while best_host_ms(model, size) > goal_ms and steps < 60:
        pruner.step()
        steps += 1
    cfg = TrainConfig(epochs=epochs, batch_size=batch, loss=[LossTerm(name="ce")], optimizer={"lr": 0.01},
                      augment={"shift": 0})
    t0 = time.perf_counter()
    r = train(model, data, cfg, seed=0, label="torch-pruning alone, plain fine-tune")
    return model.eval(), {"pruner_steps": steps, "accuracy_pytorch": round(r.best_accuracy, 3),
                          "finetune_s": round(time.perf_counter() - t0, 1)}


def nncf_ptq(teacher: torch.nn.Module, data: Any, folder: Path) -> dict[str, Path]:
    """NNCF post-training quantization of the teacher as NNCF documents it for PyTorch models:
    ``nncf.quantize``, then ``openvino.convert_model`` (a plain ``torch.onnx.export`` of NNCF's
    model writes OpenVINO's FakeQuantize op, which ONNX Runtime cannot load)."""
    import nncf
    import openvino as ov

    x, _ = data.train_sample(512, 0)
    calib = nncf.Dataset([data.normalize(x[i:i + 32]) for i in range(0, len(x), 32)])
    q = nncf.quantize(copy.deepcopy(teacher).eval(), calib)
    example = data.normalize(x[:1])
    xml = folder / "teacher_ptq.xml"
    ov.save_model(ov.convert_model(q, example_input=example), xml)
    return {"nncf PTQ teacher": xml}


def shipped_file(run: Path, pick: dict[str, Any]) -> Path:
    """The file a run's host pick names (relative to the run folder unless absolute)."""
    shipped = Path(pick["file"].strip("`"))
    return shipped if shipped.is_absolute() else run / shipped


def val_arrays(data: Any) -> tuple[np.ndarray, np.ndarray]:
    x_val, y_val = data.val_inputs()
    return x_val.numpy().astype(np.float32), y_val.numpy()


def host_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    raw = config_for(args.case, args.small, work, args.speedup)
    t0 = time.perf_counter()
    report = edgekd.compress(copy.deepcopy(raw), ["host"], quiet=True, resume=True,  # a re-run reuses finished stages
                             command=f"edgekd compress {args.case} --target host")
    run_s = time.perf_counter() - t0
    run, pick, cfg, data, teacher, (x, y), files = host_setup(raw, report, work)
    size = data.image_size
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        goal = pick["median_ms"]
        tp_model, tp_info = torch_pruning_alone(teacher, data, size, goal, cfg.distill.epochs, cfg.distill.batch_size)
        files["torch-pruning alone"] = export_onnx(tp_model, torch.randn(1, 3, size, size), folder / "tp.onnx", 17)
        files.update(nncf_ptq(teacher, data, folder))
        passes = [side_by_side(files, x, y) for _ in range(args.passes)]  # a 0.1 ms file moves ±40% run to run
    rows = passes[0] if len(passes) == 1 else median_rows(passes)
    return {"case": args.case, "small": args.small, "run_seconds": round(run_s, 1), "pick": pick,
            "distillation": report.comparisons.get("distillation"),
            "student_sources": report.comparisons.get("student_sources"),
            "search": {k: report.search.get(k) for k in ("budgets", "chosen")},
            "did_not_pay": pick.get("did_not_pay"), "torch_pruning": tp_info, "rows": rows,
            "verdict": verdict(rows, pick), "passes": [verdict(r, pick) for r in passes]}


def host_setup(raw: dict[str, Any], report: Any, work: Path) -> tuple[Path, Any, Config, Any, torch.nn.Module,
                                                                    tuple[np.ndarray, np.ndarray], dict[str, Path]]:
    """What a side-by-side on host starts from: the run folder, its host pick, the config, the data,
    the trained teacher, the validation arrays, and the teacher's and the shipped files."""
    run = work / report.run_name
    pick = report.deployment["host"]
    cfg = Config.model_validate(raw)
    data, _ = load_run_data(cfg)
    teacher, _ = load_model(run / "teacher" / "model")
    files = {"teacher": run / "export" / "teacher.onnx", "shipped": shipped_file(run, pick)}
    return run, pick, cfg, data, teacher, val_arrays(data), files


def median_rows(passes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each (file, runtime)'s median latency over the passes (accuracy is the same in each)."""
    import statistics

    out = []
    for i, row in enumerate(passes[0]):
        out.append({**row, "median_ms": round(statistics.median(p[i]["median_ms"] for p in passes), 4),
                    "passes_ms": [p[i]["median_ms"] for p in passes]})
    return out


def verdict(rows: list[dict[str, Any]], pick: dict[str, Any]) -> dict[str, Any]:
    """Speed-up of the shipped file over the teacher's best, its accuracy loss, and whether any
    user-without-edgekd point is both faster and more accurate (dominates it)."""
    teacher = min((r for r in rows if r["file"] == "teacher"), key=lambda r: r["median_ms"])
    rt = "openvino" if pick["runtime"] == "openvino" else "onnxruntime"
    shipped = next(r for r in rows if r["file"] == "shipped" and r["runtime"] == rt)
    others = [r for r in rows if r["file"] not in ("teacher", "shipped")]
    dominated_by = [f"{r['file']} in {r['runtime']}" for r in others
                    if r["median_ms"] <= shipped["median_ms"] and r["accuracy"] > shipped["accuracy"]]
    return {"speedup": round(teacher["median_ms"] / shipped["median_ms"], 2),
            "teacher_best": teacher, "shipped": shipped,
            "accuracy_loss": round(teacher["accuracy"] - shipped["accuracy"], 3), "dominated_by": dominated_by}


def device_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    raw = config_for(args.case, args.small, work, args.speedup)
    raw["name"] = f"{raw['name']}-devices"
    report = edgekd.compress(raw, list(args.targets), quiet=True)
    budgets = {t["name"]: t for t in report.targets}
    return {"case": args.case, "targets": args.targets, "speedup": raw["search"].get("constraints", {}).get("speedup"),
            "search": {k: report.search.get(k) for k in ("budgets", "chosen")}, "picks": {
        t: {"model": c["model"], "runtime": c["runtime"], "precision": c["precision"], "ms": c["median_ms"],
            "kind": c["kind"], "speedup_vs_teacher_best": c["speedup_vs_teacher_best"],
            "budget_ms": budgets[t].get("latency_budget_ms"), "budget_basis": budgets[t].get("budget_basis"),
            "meets_budget": c["median_ms"] <= (budgets[t].get("latency_budget_ms") or float("inf")),
            "did_not_pay": c.get("did_not_pay"), "accuracy": c["accuracy"]}
        for t, c in report.deployment.items()}}


def remeasure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Only the side-by-side again, for the teacher and the shipped file of a finished run in
    ``work`` (and of ``--also`` runs): sub-millisecond timings on a shared machine move by half
    between quiet and busy hours; accuracies do not."""
    runs = {"shipped": work}
    runs.update({f"shipped ({p})": p for p in args.also})
    files: dict[str, Path] = {}
    for label, folder in runs.items():
        raw = config_for(args.case, args.small, folder, args.speedup)
        run = folder / raw["name"]
        pick = json.loads((run / "report" / "report.json").read_text())["deployment"]["host"]
        files.setdefault("teacher", run / "export" / "teacher.onnx")
        files[label] = shipped_file(run, pick)
    data, _ = load_run_data(Config.model_validate(config_for(args.case, args.small, work, args.speedup)))
    x, y = val_arrays(data)
    passes = [side_by_side(files, x, y) for _ in range(args.passes)]
    rows = median_rows(passes)
    return {"case": args.case, "remeasured": {k: str(v) for k, v in files.items()}, "rows": rows,
            "speedups": {label: [round(min(r["median_ms"] for r in p if r["file"] == "teacher")
                                       / next(r["median_ms"] for r in p if r["file"] == label
                                              and r["runtime"] == "onnxruntime"), 2) for p in passes]
                         for label in files if label != "teacher"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=["digits", "synthetic"], default="digits")
    ap.add_argument("--small", action="store_true", help="synthetic: 6000/2000 images instead of 20000/4000")
    ap.add_argument("--targets", nargs="+", default=["host"])
    ap.add_argument("--workdir", type=Path, default=common.CACHE / "pays")
    ap.add_argument("--passes", type=int, default=3, help="side-by-side passes; the median latency of each file")
    ap.add_argument("--speedup", help="search.constraints.speedup instead of the example's, YAML: 3 or "
                    "'{jetson-orin-nano: 2, default: 4}'")
    ap.add_argument("--remeasure", action="store_true", help="only the side-by-side of the teacher and the "
                    "shipped file of the finished run in --workdir (host)")
    ap.add_argument("--also", type=Path, nargs="*", default=[], help="with --remeasure: more workdirs whose "
                    "shipped files join the side-by-side")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.remeasure:
        out = remeasure(args, args.workdir)
    else:
        out = host_case(args, args.workdir) if args.targets == ["host"] else device_case(args, args.workdir)
    name = f"pays_{args.case}{'_small' if args.small else ''}{'' if args.targets == ['host'] else '_devices'}"
    name += "_remeasured" if args.remeasure else ""
    print(json.dumps(out, indent=2, default=str))
    print(f"saved {common.save(name, out)}")


if __name__ == "__main__":
    main()
