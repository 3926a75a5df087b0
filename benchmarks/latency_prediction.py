"""How good is the roofline predictor on this machine, and where do runtimes sit on the roofline?

1. Fit the host profile on the zoo's "calibration" models, predict the disjoint
   "evaluation" models (several families and sizes, FP32 and INT8 Q/DQ), compare with
   ONNX Runtime measurements: median absolute error and the fraction within ±10%.
   The evaluation models are measured twice (before and after the calibration set, each
   the median of 5 passes): how far two measurements of the same model are apart is the
   floor under any prediction error on this machine. The predictor is scored against the
   mean of the two (10 passes), and against each one alone.
2. Achieved GFLOP/s of the fastest runtime vs the measured FP32 peak, for a large and a
   small model.
3. Is the backend edgekd chooses on host still the fastest in a separate side-by-side run?

    python benchmarks/latency_prediction.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import common
import numpy as np
import torch

from edgekd.core.config import BenchConfig
from edgekd.core.profiles import resolve_target
from edgekd.latency.backends.base import default_threads
from edgekd.latency.calibrate import Sample, errors, fit, summary
from edgekd.latency.host_calibration import ZOO, ZooModel, export_zoo_model, measure_peaks, measure_zoo, zoo_samples
from edgekd.latency.measure import BenchItem, measure_items
from edgekd.latency.onnx_graph import analyze

ROOFLINE_MODELS = {"large": ZooModel("resnet50", {}, 96), "small": ZooModel("mobilenetv3_small_050", {}, 32)}


def roofline_position(threads: int, peak: float) -> dict:
    """Fastest backend's GFLOP/s vs peak; and whether the choice (fastest of one side-by-side
    run, as the bench stage makes it) is still the fastest in a second, independent run."""
    import openvino as ov

    from edgekd.latency.choice import choose

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, m in ROOFLINE_MODELS.items():
            path = export_zoo_model(m, Path(tmp))
            xml = Path(tmp) / f"{label}.xml"
            ov.save_model(ov.convert_model(str(path)), str(xml))
            flops = sum(layer.flops for layer in analyze(path))
            x = np.random.default_rng(0).standard_normal((1, 3, m.size, m.size)).astype(np.float32)
            items = [BenchItem(label, "onnx", "fp32", path, "onnxruntime"),
                     BenchItem(label, "openvino", "fp32", xml, "openvino")]
            cfg = BenchConfig(repeats=50, rounds=3, threads=threads)
            first = [r.as_dict() for r in measure_items(items, x, cfg)]
            second = [r.as_dict() for r in measure_items(items, x, cfg)]
            chosen = choose(first)["host"][label]["backend"]
            confirm = choose(second)["host"][label]["backend"]
            best = min(first, key=lambda r: r["median_ms"])
            gflops = flops / (best["median_ms"] * 1e6)
            out[label] = {"model": m.label, "gflop": round(flops / 1e9, 4), "backend": best["backend"],
                          "median_ms": best["median_ms"], "achieved_gflops": round(gflops, 2),
                          "fraction_of_peak": round(gflops / peak, 3),
                          "run1_ms": {r["backend"]: r["median_ms"] for r in first},
                          "run2_ms": {r["backend"]: r["median_ms"] for r in second},
                          "chosen": chosen, "fastest_in_second_run": confirm, "choice_confirmed": chosen == confirm}
    return out


def main() -> None:
    threads = default_threads()
    torch.set_num_threads(threads)
    peaks = measure_peaks(threads)
    host = resolve_target("host")[0]
    host = host.model_copy(update={"peak_gops": {"fp32": peaks["fp32_gflops"], "int8": peaks["fp32_gflops"] * 2},
                                   "memory_bandwidth_gbs": peaks["bandwidth_gbs"], "cores": threads})
    with tempfile.TemporaryDirectory() as tmp:
        models = ZOO["evaluation"]
        paths = [(export_zoo_model(m, Path(tmp)), m.size) for m in models]
        first = measure_zoo(paths, threads)
        cal = zoo_samples("calibration", threads)
        second = measure_zoo(paths, threads)
        both = [(a + b) / 2 for a, b in zip(first, second, strict=True)]
        ev = [Sample(m.label, analyze(p), "int8" if m.int8 else "fp32", t)
              for m, (p, _), t in zip(models, paths, both, strict=True)]
    only_first, only_second = ([Sample(s.name, s.layers, s.precision, t) for s, t in zip(ev, ms, strict=True)]
                               for ms in (first, second))
    repeat = np.abs(np.array(second) / np.array(first) - 1)
    floor = {"median_abs_difference": round(float(np.median(repeat)), 4),
             "within_10pct": round(float(np.mean(repeat <= 0.10)), 4), "max": round(float(repeat.max()), 4)}
    before = summary(errors(ev, host))
    fitted = host.model_copy(update={"calibration": fit(cal, host, "benchmark")})
    rows = errors(ev, fitted)
    after, in_sample = summary(rows), summary(errors(cal, fitted))
    vs_first, vs_second = summary(errors(only_first, fitted)), summary(errors(only_second, fitted))
    position = roofline_position(threads, peaks["fp32_gflops"])
    res = {"peaks": peaks, "threads": threads, "calibration_models": [s.name for s in cal],
           "calibration_measured_ms": {s.name: s.measured_ms for s in cal},  # for refitting offline
           "evaluation": rows, "held_out": after, "held_out_vs_first_measurement": vs_first,
           "held_out_vs_second_measurement": vs_second, "measurement_repeatability": floor,
           "first_measurement_ms": dict(zip([s.name for s in ev], first, strict=True)),
           "second_measurement_ms": dict(zip([s.name for s in ev], second, strict=True)),
           "in_sample": in_sample, "uncalibrated_priors": before,
           "fitted": fitted.calibration.model_dump(), "roofline_position": position}
    path = common.save("latency_prediction", res)
    print(f"peaks: {peaks} ({threads} threads)")
    print(f"held-out ({after['models']} models): median |error| {after['median_abs_error']:.1%}, "
          f"{after['within_10pct']:.0%} within ±10%, {after['within_20pct']:.0%} within ±20%, max {after['max_abs_error']:.0%} "
          f"(in-sample, {in_sample['models']} models: {in_sample['median_abs_error']:.1%}; "
          f"before fitting {before['median_abs_error']:.1%})")
    for label, v in (("first", vs_first), ("second", vs_second)):
        print(f"against the {label} measurement alone: median |error| {v['median_abs_error']:.1%}, "
              f"{v['within_10pct']:.0%} within ±10%")
    print(f"measurement repeatability (same models, measured twice): median |difference| "
          f"{floor['median_abs_difference']:.1%}, {floor['within_10pct']:.0%} within ±10%, max {floor['max']:.0%}")
    print("| model | precision | measured ms | predicted ms | error |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['precision']} | {r['measured_ms']:.4f} | {r['predicted_ms']:.4f} | {r['error']:+.1%} |")
    for label, p in position.items():
        print(f"{label}: {p['model']} {p['gflop']} GFLOP, fastest {p['backend']} {p['median_ms']:.3f} ms = "
              f"{p['achieved_gflops']} GFLOP/s = {p['fraction_of_peak']:.0%} of the {peaks['fp32_gflops']} GFLOP/s peak; "
              f"run 1 {p['run1_ms']}, run 2 {p['run2_ms']}: choice {p['chosen']} confirmed: {p['choice_confirmed']}")
    print(path)


if __name__ == "__main__":
    main()
