"""The run's budgets, resolved once and kept in the run folder.

Rank 0 resolves them from the config (``resolve.py``), or reads ``budgets.json`` when its key
(everything the budgets depend on) matches, so ``--resume`` does not time the teacher again;
under torchrun the result is broadcast, and a wall out of reach raises on every rank alike.
After the search, its settled copy is the one in force (``search/budgets.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekd.core import dist
from edgekd.core.budgets import RunBudgets
from edgekd.core.config import Config
from edgekd.core.errors import SearchError
from edgekd.core.profiles import Profile
from edgekd.core.rundir import atomic_write_json
from edgekd.engines.budgets.resolve import resolve_budgets

FILE = "budgets.json"


def budgets_key(config: Config, targets: list[Profile], *, input_size: int, num_classes: int,
                round_to: int | None, probe: bool) -> dict[str, Any]:
    """Everything the resolved budgets depend on: a saved copy with another key is resolved again."""
    c = config
    return json.loads(json.dumps({
        "teacher": {"model": c.teacher.model, "kwargs": c.teacher.kwargs}, "input_size": input_size,
        "classes": num_classes, "targets": [p.model_dump(mode="json") for p in targets],
        "threads": c.bench.threads, "constraints": c.search.constraints.model_dump(mode="json"),
        "written": sorted(c.search.constraints.model_fields_set), "seed": c.seed,
        "space": c.search.space.spec() if c.search.space else None, "stages": c.stages,
        "teacher_pruned": c.distill.teacher_pruned, "rounding": round_to,
        "prune_speedup": c.prune.speedup, "probed": probe and "search" in c.stages}, default=str))


def run_budgets(config: Config, targets: list[Profile], root: Path, *, input_size: int, num_classes: int,
                round_to: int | None, space: Callable[[], Any], probe: bool = True,
                collective: bool = True) -> RunBudgets:
    """The budgets resolved at the start of the run in ``root``. ``space``: builds the search space
    to probe (called only when resolving); ``probe``: time what it reaches and check the walls (a
    re-rendered report of a run that never resolved its budgets needs only the teacher's latency);
    ``collective``: every torchrun rank is in this call."""
    key = budgets_key(config, targets, input_size=input_size, num_classes=num_classes, round_to=round_to,
                      probe=probe)
    path = root / FILE
    found: dict[str, Any] | None = None
    if dist.world().main:
        found = _saved(path, key)
        if found is None:
            try:
                probed = space() if probe and "search" in config.stages else None
                found = resolve_budgets(config, targets, input_size=input_size, num_classes=num_classes,
                                        round_to=round_to, space=probed).as_dict()
                atomic_write_json(path, {"key": key, "budgets": found})
            except SearchError as exc:
                found = {"error": [exc.message, exc.hint]}
    if collective:
        found = dist.broadcast(found)
    assert found is not None
    if "error" in found:
        raise SearchError(found["error"][0], hint=found["error"][1])
    return RunBudgets.from_dict(found)


def settled_budgets(path: Path | None, resolved: Callable[[], RunBudgets]) -> RunBudgets:
    """The budgets in force after the search (its ``budgets.json``), else those resolved at start.
    A settled file written before prune budgets were kept borrows them from the resolved ones."""
    if path is None or not Path(path).exists():
        return resolved()
    settled = RunBudgets.from_dict(json.loads(Path(path).read_text()))
    if not settled.prune:
        settled.prune = resolved().prune
    return settled


def _saved(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        saved = json.loads(path.read_text())
        return saved["budgets"] if saved.get("key") == key else None
    except (OSError, ValueError, KeyError):
        return None
