"""The import graph of edgekd, by package, checked against its layers and drawn as Mermaid.

    python docs/import_graph.py            # print the Mermaid drawing
    python docs/import_graph.py --write    # rewrite docs/imports.md with it
    python docs/import_graph.py --check    # exit 1 on an upward import, a cycle or a stage importing a stage

Every import counts, also those inside functions (a lazy import is still a dependency).
tests/test_layers.py runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgekd"

# Lower number = lower layer. A package may import only packages of a strictly lower layer.
LAYERS: dict[str, int] = {
    "core": 0,
    "devicekit": 1,  # finds the device kit's file (export/edgekd_kit.py), which imports nothing of edgekd
    "data": 2, "quantization": 2, "search_spaces": 2,
    "models": 3,
    "runtimes": 4, "onnx_io": 4, "plan": 4,
    "train": 5, "pruning": 5, "latency": 5,
    "exporters": 6, "reporting": 6, "tracking": 6, "budgets": 6,  # tracking: MLflow logging, called by the pipeline
    "stages": 7,
    "pipeline": 8,
    "api": 9,
    "cli": 10, "edgekd": 10,  # the front door (edgekd/__init__.py) re-exports the API lazily
    "__main__": 11,
}
LAYER_NAMES = {0: "core", 1: "core", 2: "engines", 3: "engines", 4: "runtimes, ONNX I/O, plan", 5: "engines",
               6: "engines",
               7: "stages", 8: "stages", 9: "surfaces", 10: "surfaces", 11: "surfaces"}


def module_name(path: Path) -> str:
    parts = ("edgekd", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edgekd"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every edgekd module ``path`` imports (relative imports resolved; ``from edgekd import
    api`` is an import of ``edgekd.api``, not of the front door)."""
    mod = module_name(path)
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "edgekd"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")[: len(mod.split(".")) - node.level + (1 if is_pkg else 0)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            if name.split(".")[0] != "edgekd":
                continue
            subs = {f"{name}.{a.name}" for a in node.names} & modules
            out |= subs if len(subs) == len(node.names) else {name, *subs}
    return out


def module_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {mod: {m for m in imports_of(path, set(files)) if m in files and m != mod} for mod, path in files.items()}


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for mod, deps in graph.items():
        out[package_of(mod)] |= {package_of(d) for d in deps} - {package_of(mod)}
    return out


def problems(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for mod, deps in sorted(graph.items()):
        src = package_of(mod)
        if src not in LAYERS:
            found.append(f"{mod}: package {src!r} has no layer in docs/import_graph.py LAYERS")
            continue
        for d in sorted(deps):
            dst = package_of(d)
            if dst != src and LAYERS.get(dst, 99) >= LAYERS[src]:
                found.append(f"{mod} imports {d}: {src} (layer {LAYERS[src]}) may not import {dst} "
                             f"(layer {LAYERS.get(dst, '?')})")
            if src == dst == "stages" and _stage(mod) and _stage(d) and _stage(mod) != _stage(d):
                found.append(f"{mod} imports {d}: a stage imports another stage")
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return found


def _stage(mod: str) -> str | None:
    """The stage a module of edgekd.stages belongs to (None for the shared base)."""
    parts = mod.split(".")
    return None if len(parts) < 3 or parts[2] == "base" else parts[2]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One example per strongly connected set of modules that import each other (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def mermaid(graph: dict[str, set[str]]) -> str:
    """Packages grouped by layer, top to bottom; every arrow points down."""
    pkgs = package_graph(graph)
    lines = ["flowchart TD"]
    by_layer: dict[int, list[str]] = defaultdict(list)
    for p in sorted(set(pkgs) | {d for ds in pkgs.values() for d in ds}):
        by_layer[LAYERS.get(p, 99)].append(p)
    for layer in sorted(by_layer, reverse=True):
        lines.append(f"  subgraph L{layer}[\"{LAYER_NAMES.get(layer, '?')} {layer}\"]")
        lines += [f"    {p}[{p}]" for p in by_layer[layer]]
        lines.append("  end")
    for src in sorted(pkgs):
        lines += [f"  {src} --> {dst}" for dst in sorted(pkgs[src])]
    return "\n".join(lines)


PAGE = """# The import graph of edgekd

Packages by layer, top to bottom; every arrow points down (no cycle, no stage importing a stage).
Generated by `python docs/import_graph.py --write`; `python docs/import_graph.py --check` applies
the rules, and `tests/test_layers.py` fails when the drawing is stale or a lower layer imports a
higher one.

```mermaid
{drawing}
```
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    graph = module_graph()
    if args.write:
        (ROOT.parent / "docs" / "imports.md").write_text(PAGE.format(drawing=mermaid(graph)))
        return 0
    if args.check:
        found = problems(graph)
        print("\n".join(found) or "ok: no upward import, no cycle, no stage importing a stage")
        return 1 if found else 0
    print(mermaid(graph))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
