"""How good is the roofline predictor on this machine, and where do runtimes sit on the roofline?

1. Fit the host profile on the zoo's "calibration" models, predict the disjoint
   "evaluation" models (several families and sizes, FP32 and INT8 Q/DQ), compare with
   ONNX Runtime measurements: median absolute error and the fraction within ±10%, reported
   separately for the CNNs and for the transformers and ConvNeXts (one fit on both); the
   CNNs are also scored by a fit on the CNN calibration models alone, to show what the
   transformers in the calibration set cost them.
   All models are timed together in 10 passes (each pass in a new order; a model's time
   is its median over the passes), so the machine's slow minutes fall on the calibration
   and the evaluation models alike. How far the odd passes' medians are from the even
   ones' is the floor under any prediction error on this machine; the evaluation models
   are timed once more, minutes later, to show how far a calibration drifts.
2. Achieved GFLOP/s of the fastest runtime vs the measured FP32 peak, for a large and a
   small model.
3. Is the runtime edgekd chooses on host still the fastest in a separate side-by-side run?

    python benchmarks/latency_prediction.py [--save-as latency_prediction]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch

from edgekd.core.config import BenchConfig
from edgekd.core.profiles import resolve_target
from edgekd.engines.latency.calibrate import Sample, errors, fit, summary
from edgekd.engines.latency.host_calibration import (
    ZOO,
    ZooModel,
    export_zoo,
    export_zoo_model,
    last_level_cache_mb,
    measure_passes,
    measure_peaks,
    zoo_sample,
)
from edgekd.engines.latency.measure import BenchItem, measure_items
from edgekd.engines.latency.onnx_graph import analyze
from edgekd.engines.runtimes.base import default_threads

PASSES = 10  # over calibration and evaluation models together
LATER_PASSES = 5
ROOFLINE_MODELS = {"large": ZooModel("resnet50", {}, 96), "small": ZooModel("mobilenetv3_small_050", {}, 32)}


def roofline_position(threads: int, peak: float) -> dict:
    """Fastest runtime's GFLOP/s vs peak; and whether the choice (fastest of one side-by-side
    run, as the bench stage makes it) is still the fastest in a second, independent run."""
    import openvino as ov

    from edgekd.engines.reporting.choice import choose

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
            pick, again = choose(first)["host"][label], choose(second)["host"][label]
            chosen, confirm = pick["runtime"], again["runtime"]
            best = min(first, key=lambda r: r["median_ms"])
            gflops = flops / (best["median_ms"] * 1e6)
            out[label] = {"model": m.label, "gflop": round(flops / 1e9, 4), "runtime": best["runtime"],
                          "median_ms": best["median_ms"], "achieved_gflops": round(gflops, 2),
                          "fraction_of_peak": round(gflops / peak, 3),
                          "run1_ms": {r["runtime"]: r["median_ms"] for r in first},
                          "run2_ms": {r["runtime"]: r["median_ms"] for r in second},
                          "chosen": chosen, "fastest_in_second_run": confirm, "choice_confirmed": chosen == confirm,
                          "lead_run1": pick["lead"], "lead_run2": again["lead"], "close_call": pick["close_call"]}
    return out


def _differences(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """How far two measurements of the same models are apart: the floor under any prediction error."""
    d = np.abs(a / b - 1)
    return {"median_abs_difference": round(float(np.median(d)), 4), "within_10pct": round(float(np.mean(d <= 0.10)), 4),
            "max": round(float(d.max()), 4)}


GROUPS = {"cnn": "CNNs", "transformer": "transformers and ConvNeXt"}


def _group(models: list[ZooModel], rows: list, group: str) -> list:
    return [r for m, r in zip(models, rows, strict=True) if m.transformer == (group == "transformer")]


def _print_table(title: str, rows: list[dict], stats: dict) -> None:
    print(f"\n{title} ({stats['models']} models): median |error| {stats['median_abs_error']:.1%}, "
          f"{stats['within_10pct']:.0%} within ±10%, {stats['within_20pct']:.0%} within ±20%, "
          f"max {stats['max_abs_error']:.0%}")
    print("| model | precision | measured ms | predicted ms | error |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['precision']} | {r['measured_ms']:.4f} | {r['predicted_ms']:.4f} | {r['error']:+.1%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save-as", default="latency_prediction", help="result file name under benchmarks/results/")
    args = ap.parse_args()
    threads = default_threads()
    torch.set_num_threads(threads)
    peaks = measure_peaks(threads)
    host = resolve_target("host")[0]
    host = host.model_copy(update={"peak_gops": {"fp32": peaks["fp32_gflops"], "int8": peaks["fp32_gflops"] * 2},
                                   "memory_bandwidth_gbs": peaks["bandwidth_gbs"], "cores": threads,
                                   "cache_mb": last_level_cache_mb()})
    cal_models, ev_models = ZOO["calibration"], ZOO["evaluation"]
    with tempfile.TemporaryDirectory() as tmp:
        cal_paths, ev_paths = export_zoo("calibration", Path(tmp)), export_zoo("evaluation", Path(tmp))
        # calibration and evaluation models timed in the same passes: the machine's slow and
        # fast minutes fall on both alike
        start = time.perf_counter()
        passes = measure_passes(cal_paths + ev_paths, threads, PASSES)
        later_start = time.perf_counter()
        later = np.median(measure_passes(ev_paths, threads, LATER_PASSES, seed=1), axis=1)
        minutes = (time.perf_counter() - start) / 60
        cal_passes, ev_passes = passes[:len(cal_paths)], passes[len(cal_paths):]
        cal = [zoo_sample(m, p, float(np.median(t))) for m, (p, _), t in zip(cal_models, cal_paths, cal_passes, strict=True)]
        ev = [zoo_sample(m, p, float(np.median(t))) for m, (p, _), t in zip(ev_models, ev_paths, ev_passes, strict=True)]
    even, odd = np.median(ev_passes[:, ::2], axis=1), np.median(ev_passes[:, 1::2], axis=1)
    before = summary(errors(ev, host))
    fitted = host.model_copy(update={"calibration": fit(cal, host, "benchmark")})
    rows, cal_rows = errors(ev, fitted), errors(cal, fitted)
    later_rows = errors([Sample(s.name, s.layers, s.precision, float(t)) for s, t in zip(ev, later, strict=True)],
                        fitted)
    measured = np.array([s.measured_ms for s in ev])
    groups: dict[str, dict] = {}
    for g in GROUPS:
        mask = np.array([m.transformer == (g == "transformer") for m in ev_models])
        groups[g] = {"held_out": summary(_group(ev_models, rows, g)),
                     "in_sample": summary(_group(cal_models, cal_rows, g)),
                     "held_out_vs_later_measurement": summary(_group(ev_models, later_rows, g)),
                     "measurement_repeatability": _differences(odd[mask], even[mask]),
                     "drift_to_later_measurement": _differences(later[mask], measured[mask]),
                     "uncalibrated_priors": summary(_group(ev_models, errors(ev, host), g))}
    # the CNNs scored by a fit on the CNN calibration models alone (the zoo before transformers)
    cnn_cal = _group(cal_models, cal, "cnn")
    cnn_fitted = host.model_copy(update={"calibration": fit(cnn_cal, host, "benchmark, CNNs only")})
    groups["cnn"]["held_out_cnn_only_fit"] = summary(_group(ev_models, errors(ev, cnn_fitted), "cnn"))
    groups["transformer"]["held_out_cnn_only_fit"] = summary(_group(ev_models, errors(ev, cnn_fitted), "transformer"))
    after, in_sample, vs_later = summary(rows), summary(cal_rows), summary(later_rows)
    floor, drift = _differences(odd, even), _differences(later, measured)
    position = roofline_position(threads, peaks["fp32_gflops"])
    res = {"peaks": peaks, "cache_mb": host.cache_mb, "threads": threads, "passes": PASSES, "calibration_models": [s.name for s in cal],
           # every pass's timing of every model: to refit offline on the same data
           "calibration_pass_ms": {s.name: t.round(5).tolist() for s, t in zip(cal, cal_passes, strict=True)},
           "evaluation_pass_ms": {s.name: t.round(5).tolist() for s, t in zip(ev, ev_passes, strict=True)},
           "evaluation_later_ms": {s.name: round(float(t), 5) for s, t in zip(ev, later, strict=True)},
           "minutes_to_later_measurement": round((later_start - start) / 60, 1), "minutes_timing": round(minutes, 1),
           "evaluation": rows, "transformer_models": [m.label for m in cal_models + ev_models if m.transformer],
           # "held_out" etc. over all evaluation models; "groups" splits them: CNNs, transformers/ConvNeXt
           "held_out": after, "held_out_vs_later_measurement": vs_later,
           "measurement_repeatability": floor, "drift_to_later_measurement": drift,
           "in_sample": in_sample, "uncalibrated_priors": before, "groups": groups,
           "fitted": fitted.calibration.model_dump(), "fitted_cnn_only": cnn_fitted.calibration.model_dump(),
           "roofline_position": position}
    path = common.save(args.save_as, res)
    print(f"peaks: {peaks} ({threads} threads)")
    print(f"held-out, all ({after['models']} models): median |error| {after['median_abs_error']:.1%}, "
          f"{after['within_10pct']:.0%} within ±10%, {after['within_20pct']:.0%} within ±20%, max {after['max_abs_error']:.0%} "
          f"(in-sample, {in_sample['models']} models: {in_sample['median_abs_error']:.1%}; "
          f"before fitting {before['median_abs_error']:.1%})")
    for g, title in GROUPS.items():
        v = groups[g]
        print(f"{title}: held-out median |error| {v['held_out']['median_abs_error']:.1%} "
              f"({v['held_out']['within_10pct']:.0%} within ±10%, {v['held_out']['within_20pct']:.0%} within ±20%); "
              f"in-sample {v['in_sample']['median_abs_error']:.1%}; vs the later timing "
              f"{v['held_out_vs_later_measurement']['median_abs_error']:.1%}; fitted on CNNs only "
              f"{v['held_out_cnn_only_fit']['median_abs_error']:.1%}; repeatability (odd vs even passes) "
              f"{v['measurement_repeatability']['median_abs_difference']:.1%}, drift to the later timing "
              f"{v['drift_to_later_measurement']['median_abs_difference']:.1%}")
    print(f"against the evaluation set timed again {res['minutes_to_later_measurement']} min later: median |error| "
          f"{vs_later['median_abs_error']:.1%}, {vs_later['within_10pct']:.0%} within ±10%")
    for label, v in (("odd vs even passes", floor), ("later vs interleaved", drift)):
        print(f"measurement repeatability ({label}): median |difference| {v['median_abs_difference']:.1%}, "
              f"{v['within_10pct']:.0%} within ±10%, max {v['max']:.0%}")
    for g, title in GROUPS.items():
        _print_table(f"held-out, {title}", _group(ev_models, rows, g), groups[g]["held_out"])
    for label, p in position.items():
        print(f"{label}: {p['model']} {p['gflop']} GFLOP, fastest {p['runtime']} {p['median_ms']:.3f} ms = "
              f"{p['achieved_gflops']} GFLOP/s = {p['fraction_of_peak']:.0%} of the {peaks['fp32_gflops']} GFLOP/s peak; "
              f"run 1 {p['run1_ms']}, run 2 {p['run2_ms']}: choice {p['chosen']} confirmed: {p['choice_confirmed']} "
              f"(lead {p['lead_run1']:.1%} / {p['lead_run2']:.1%}{', a close call' if p['close_call'] else ''})")
    print(path)


if __name__ == "__main__":
    main()
