"""How long the DisWOT search takes for a few hundred candidates on this machine, end to end
(building, scoring, MACs, and ONNX Runtime latency of every candidate within the size budget).

    python benchmarks/search_speed.py
"""

from __future__ import annotations

import time

import common

import edgekd


def main() -> None:
    out = common.HERE / ".cache" / "runs"
    cfg = {"name": "search-speed", "output_dir": str(out), "seed": 0, "data": common.SYNTHETIC,
           "teacher": {"model": common.TEACHER["model"], "kwargs": common.TEACHER["kwargs"]}, "stages": ["search"],
           "search": {"space": {"name": "resnet", "blocks": ["basic", "bottleneck"], "depths": [1, 2, 3],
                                "widths": [16, 24, 32, 48, 64]},
                      "population": 24, "generations": 8, "constraints": {"latency_ms": 1.0, "max_params_m": 2.0}}}
    t0 = time.perf_counter()
    report = edgekd.search(cfg, ["host"], quiet=True)
    wall = time.perf_counter() - t0
    s = report.search
    res = {"space_size": s["space_size"], "evaluated": s["evaluated"], "feasible": s["feasible"],
           "search_seconds": s["seconds"], "seconds_per_candidate": s["seconds_per_candidate"], "wall_seconds": round(wall, 1),
           "chosen": s["chosen"]["key"], "budgets": s["budgets"]}
    path = common.save("search_speed", res)
    print(f"{s['evaluated']} of {s['space_size']} candidates scored in {s['seconds']:.0f} s "
          f"({s['seconds_per_candidate']:.2f} s each, incl. latency of the {s['feasible']} feasible ones on host); "
          f"chose {s['chosen']['key']} · {path}")


if __name__ == "__main__":
    main()
