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

# The layers are the folders: edgekd/core, edgekd/engines/<job>, edgekd/stages, and the surfaces
# at the root. A module may import its own tier or a lower one; packages of one tier may not
# import each other in a circle (the engines form a DAG); a stage never imports another stage.
TIERS = {"core": 0, "engines": 1, "stages": 2}
SURFACE_TIER = 3
TIER_NAMES = {0: "core", 1: "engines", 2: "stages", 3: "surfaces"}
# What may sit loose at the root: the surfaces. Everything else lives in a package named for its job.
SURFACES = {"edgekd", "edgekd.__main__", "edgekd.api", "edgekd.cli", "edgekd.pipeline"}
SHARED_STAGE_MODULES = {"base", "context", "outputs"}  # the stage interface, shared by every stage


def module_name(path: Path) -> str:
    parts = ("edgekd", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """``engines.latency`` for an engine, ``core``/``stages`` for those tiers, else the surface."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "engines":
        return f"engines.{parts[2]}"
    return parts[1] if len(parts) > 1 else "edgekd"


def tier_of(package: str) -> int:
    return TIERS.get(package.split(".")[0], SURFACE_TIER)


def loose(module: str, is_package: bool = False) -> bool:
    """A module below the surfaces that sits at the root, or straight in ``engines/`` (no job folder)."""
    parts = module.split(".")
    if len(parts) == 2 and not is_package:
        return module not in SURFACES and parts[1] not in TIERS
    return len(parts) == 3 and parts[1] == "engines" and not is_package


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


def problems(graph: dict[str, set[str]], packages: set[str] | None = None) -> list[str]:
    """Upward imports, cycles (of modules, and of packages within a tier), stages importing
    stages, and loose modules. ``packages``: the modules that are packages (``__init__``)."""
    packages = packages if packages is not None else {m for m in graph if _is_package(m)}
    found = [f"{m}: a loose module below the surfaces; move it into the package of its job"
             for m in sorted(graph) if loose(m, m in packages)]
    for mod, deps in sorted(graph.items()):
        src = package_of(mod)
        for d in sorted(deps):
            dst = package_of(d)
            if tier_of(dst) > tier_of(src):
                found.append(f"{mod} imports {d}: {TIER_NAMES[tier_of(src)]} may not import "
                             f"{TIER_NAMES[tier_of(dst)]}")
            if src == dst == "stages" and _stage(mod) and _stage(d) and _stage(mod) != _stage(d):
                found.append(f"{mod} imports {d}: a stage imports another stage")
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    pkgs = package_graph(graph)
    found += [f"package cycle: {' -> '.join(c)}" for c in cycles(pkgs)]
    return found


def _is_package(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (ROOT / rel / "__init__.py").exists()


def _stage(mod: str) -> str | None:
    """The stage a module of edgekd.stages belongs to (None for the shared base)."""
    parts = mod.split(".")
    return None if len(parts) < 3 or parts[2] in SHARED_STAGE_MODULES else parts[2]


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


def depth(pkgs: dict[str, set[str]]) -> dict[str, int]:
    """How far above the bottom of its tier a package sits (0: imports nothing of its tier)."""
    out: dict[str, int] = {}

    def visit(p: str, seen: frozenset[str] = frozenset()) -> int:
        if p not in out:
            same = [d for d in pkgs.get(p, ()) if tier_of(d) == tier_of(p) and d not in seen]
            out[p] = 1 + max((visit(d, seen | {p}) for d in same), default=-1)
        return out[p]

    for p in set(pkgs) | {d for ds in pkgs.values() for d in ds}:
        visit(p)
    return out


def mermaid(graph: dict[str, set[str]]) -> str:
    """Packages grouped by tier (the folders), top to bottom; within a tier, a package sits above
    those it imports. Every arrow points down or sideways within a tier, never up."""
    pkgs = package_graph(graph)
    level = depth(pkgs)
    lines = ["flowchart TD"]
    by_tier: dict[int, list[str]] = defaultdict(list)
    for p in sorted(set(level) - {"engines"}, key=lambda p: (-level[p], p)):  # engines/__init__: the folder's docstring
        by_tier[tier_of(p)].append(p)
    for tier in sorted(by_tier, reverse=True):
        lines.append(f"  subgraph T{tier}[\"{TIER_NAMES[tier]}\"]")
        lines += [f"    {_node(p)}[{p}]" for p in by_tier[tier]]
        lines.append("  end")
    for src in sorted(pkgs):
        lines += [f"  {_node(src)} --> {_node(dst)}" for dst in sorted(pkgs[src])]
    return "\n".join(lines)


def _node(package: str) -> str:
    return package.replace(".", "_")


PAGE = """# The import graph of edgekd

Packages by tier, which is their folder: `edgekd/core`, `edgekd/engines/<job>`, `edgekd/stages`,\nand the surfaces at the root (`cli`, `api`, `pipeline`). Every arrow points down or within a tier;\nno cycle, no stage importing a stage, no loose module below the surfaces.
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
