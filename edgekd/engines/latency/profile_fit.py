"""`edgekd profiles calibrate`: fit a profile from measurements and save it.

``host``: peaks measured here, zoo models timed in ONNX Runtime. A device profile:
device-kit results (``--from results.json``) paired with the ONNX graphs in the run's
export folder (``--exports runs/<name>/export``). The fitted profile is written to the
user's profile folder (it then shadows the shipped one) or ``--out``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape

from edgekd.core.devicekit import read_kit_results
from edgekd.core.errors import ProfileError
from edgekd.core.profiles import resolve_target, user_profile_dir
from edgekd.core.progress import Reporter
from edgekd.core.rundir import atomic_write_text
from edgekd.engines.latency.calibrate import Sample, errors, fit, summary
from edgekd.engines.latency.onnx_graph import analyze
from edgekd.engines.runtimes.base import default_threads

INT8_OVER_FP32 = 2.0  # nominal: AVX2 int8 dot products without VNNI do ~2x the FP32 FMA rate


def _device_samples(results: list[Path], exports: Path | None) -> list[Sample]:
    if exports is None:
        raise ProfileError("calibrating a device profile needs the ONNX graphs the results were measured on",
                           hint="pass --exports runs/<name>/export")
    out = []
    for f in results:
        doc = read_kit_results(f, ProfileError)
        for r in doc.get("results", []):
            art = r.get("artifact", "")
            onnx_path = exports / art if art.endswith(".onnx") else exports / f"{r['model']}.onnx"
            if not onnx_path.exists():
                raise ProfileError(f"{f}: no ONNX graph for {r['model']} ({onnx_path} missing)")
            out.append(Sample(f"{r['model']} {r['format']} {r['precision']}", analyze(onnx_path, r["batch_size"]),
                              r["precision"], float(r["median_ms"])))
    if len(out) < 3:
        raise ProfileError(f"only {len(out)} measurements: too few to fit a profile (need >= 3, better >= 10)")
    return out


def calibrate(target: str, *, results: list[Path], exports: Path | None, out: Path | None, threads: int | None,
              reporter: Reporter) -> dict[str, Any]:
    profile, _ = resolve_target(target)
    threads = threads or default_threads()
    updates: dict[str, Any] = {}
    if results:
        samples = _device_samples(results, exports)
        source = f"{len(samples)} device-kit measurements ({', '.join(p.name for p in results)})"
    elif profile.measured_here:
        from edgekd.engines.latency.host_calibration import last_level_cache_mb, measure_peaks, zoo_samples

        peaks = measure_peaks(threads)
        updates = {"peak_gops": {"fp32": peaks["fp32_gflops"], "int8": round(peaks["fp32_gflops"] * INT8_OVER_FP32, 1)},
                   "memory_bandwidth_gbs": peaks["bandwidth_gbs"], "cores": threads,
                   "cache_mb": last_level_cache_mb() or profile.cache_mb}
        reporter.line(f"[cyan]calibrate[/]: {escape(profile.name)}: {peaks['fp32_gflops']} GFLOP/s FP32 matmul, "
                      f"{peaks['bandwidth_gbs']} GB/s copy, {threads} threads")
        profile = profile.model_copy(update=updates)
        samples = zoo_samples("calibration", threads, reporter)
        source = f"{len(samples)} zoo models timed in ONNX Runtime on {platform.processor() or platform.machine()}"
    else:
        raise ProfileError(f"{profile.name} is not this machine: calibrate it from measurements made on it",
                           hint="run the device kit there (bench-dir), then: edgekd profiles calibrate "
                           f"{profile.name} --from results.json --exports runs/<name>/export")
    note = f"fitted {time.strftime('%Y-%m-%d')} on {source}"
    before = summary(errors(samples, profile))
    fitted = profile.model_copy(update={**updates, "calibration": fit(samples, profile, note)})
    rows = errors(samples, fitted)
    after = summary(rows)
    dest = out or user_profile_dir() / f"{profile.name}.yaml"
    data = fitted.model_dump(mode="json", exclude_none=True)
    atomic_write_text(dest, f"# {note}\n" + yaml.safe_dump(data, sort_keys=False))
    reporter.line(f"[green]calibrate[/]: median |error| {before['median_abs_error']:.1%} → {after['median_abs_error']:.1%} "
                  f"on the fitting set; saved {escape(str(dest))}")
    return {"profile": fitted.name, "path": str(dest), "before": before, "after": after, "samples": rows,
            "calibration": fitted.calibration.model_dump()}
