"""Do two runs of one config give the same models, accuracies and picks?

Used to check that a change meant not to alter results does not: run the same config with the
old and the new code into two folders, then

    python benchmarks/compare_runs.py runs-old/digits runs-new/digits

prints, stage by stage, what each run chose and reached, and whether they agree. Accuracies and
choices come from each run's manifest and report.json; latencies are not compared (timings move
with the machine's load), only what they decided.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def facts(run: Path) -> dict[str, Any]:
    """What a run decided and reached, by name."""
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    m = {k: v.get("metrics", {}) for k, v in stages.items()}
    out: dict[str, Any] = {}
    if "teacher" in m:
        out["teacher accuracy"] = m["teacher"].get("accuracy")
    if "search" in m:
        out["search: chosen"] = (m["search"].get("chosen") or {}).get("key")
        out["search: feasible / evaluated"] = f"{m['search'].get('feasible')} / {m['search'].get('evaluated')}"
    if "distill" in m:
        d = m["distill"]
        out["distill: source, shipped"] = f"{d.get('source')}, {d.get('shipped')}"
        out["distill: accuracy"] = d.get("accuracy")
        for name, s in (d.get("sources") or {}).items():
            out[f"distill: {name} (KD / no teacher)"] = f"{s.get('accuracy')} / {s.get('plain_accuracy')}"
    if "prune" in m:
        out["prune: accuracy"] = m["prune"].get("accuracy")
        out["prune: MACs"] = m["prune"].get("macs")
    if "quantize" in m:
        out["quantize: kept, accuracy"] = f"{m['quantize'].get('kept')}, {m['quantize'].get('accuracy')}"
    report = run / "report" / "report.json"
    if report.exists():
        r = json.loads(report.read_text())
        for target, d in (r.get("deployment") or {}).items():
            runtime = d.get("runtime", d.get("backend"))  # reports before schema 2.0 said "backend"
            out[f"deploy on {target}"] = f"{d.get('model')} ({runtime} {d.get('precision')}), {d.get('accuracy')}%"
        for g in r.get("gates") or []:
            out[f"gate {g.get('name')} on {g.get('target')}"] = "passed" if g.get("passed") else "failed"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    args = ap.parse_args()
    a, b = facts(args.a), facts(args.b)
    print(f"| | {args.a} | {args.b} | same |\n|---|---|---|---|")
    differ = 0
    for key in dict.fromkeys([*a, *b]):
        same = a.get(key) == b.get(key)
        differ += not same
        print(f"| {key} | {a.get(key)} | {b.get(key)} | {'yes' if same else '**no**'} |")
    print(f"\n{'the same' if not differ else f'{differ} differences'}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
