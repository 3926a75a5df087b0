"""Search: choose the student architecture for this teacher without training (DisWOT).

The teacher *architecture* (random init, not the trained weights) and every candidate are
scored on one fixed mini-batch; candidates over the params/MACs/latency budgets of any
target are never chosen. Writes ``choice.json`` (what distill builds) and
``candidates.json`` (every scored candidate with each score component and, per target,
whether it is on the Pareto front of score against latency: see tradeoff.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from edgekd.core import dist
from edgekd.core.budgets import RunBudgets
from edgekd.core.errors import SearchError
from edgekd.core.rundir import atomic_write_json
from edgekd.engines.budgets.settle import settle_jointly
from edgekd.engines.models.build import build_model
from edgekd.engines.models.families import family_of
from edgekd.engines.models.names import display_name
from edgekd.engines.models.stats import count_params
from edgekd.engines.reporting.sections import Section
from edgekd.engines.search.evaluate import (
    Candidate,
    Constraints,
    build_candidate,
    evaluate_candidate,
    time_candidate,
)
from edgekd.engines.search.evolution import Searcher, fitness
from edgekd.engines.search.scoring import signature
from edgekd.engines.search.selective import SelectiveTiming
from edgekd.engines.search.tradeoff import mark_front, scatter_points, teacher_point
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext
from edgekd.stages.outputs import SearchOutput


def constraints(ctx: RunContext, budgets: RunBudgets) -> Constraints:
    """The run's budgets (read, never computed here) and the size caps the user wrote."""
    c = ctx.config.search.constraints
    return Constraints(ctx.targets, limits=budgets.targets, input_size=ctx.data.image_size,
                       threads=ctx.config.bench.threads, max_params_m=c.max_params_m, max_macs_m=c.max_macs_m)


def no_feasible_error(cands: list[Candidate], budgets: Constraints) -> SearchError:
    """Which constraint failed; per target, its limit and the fastest candidate there; whether
    any single candidate meets every target; and which target bounds the choice."""
    parts = []
    if budgets.max_params_m is not None:
        parts.append(f"params ≤ {budgets.max_params_m}M (smallest reached {min(c.params for c in cands) / 1e6:.3f}M)")
    macs = [c.macs for c in cands if c.macs is not None]
    if budgets.max_macs_m is not None and macs:
        parts.append(f"MACs ≤ {budgets.max_macs_m}M (smallest reached {min(macs) / 1e6:.2f}M)")
    alone: dict[str, bool] = {}
    for target, limit in budgets.latency_limits.items():
        lat = [c.latency[target]["ms"] for c in cands if target in c.latency]
        if lat:
            kind = next(c.latency[target]["kind"] for c in cands if target in c.latency)
            b = budgets.limits[target]
            alone[target] = min(lat) <= limit
            reach = ""
            if b.speedup is not None and b.teacher and min(lat) > limit:  # relative and out of reach here
                reach = f", at most {b.teacher['ms'] / min(lat):.2f}× the teacher on this target"
            what = "you set" if b.wall else "default"
            verdict = "candidates meet it" if alone[target] else "no candidate meets it"
            parts.append(f"{target} ≤ {limit:.3g} ms ({what}: {b.basis}; fastest {kind} {min(lat):.3f} ms{reach}; "
                         f"{verdict})")
    failing = sorted({v.split(" ")[0] + (" " + v.split(" ")[2] if v.startswith("latency") else "")
                      for c in cands for v in c.violations})
    jointly = ""
    if alone and all(alone.values()):
        timed = [c for c in cands if c.latency]
        worst = {t: sum(t in " ".join(c.violations) for c in timed) for t in alone}
        bound = max(worst, key=lambda t: worst[t])
        jointly = (f"; each target alone has candidates within its budget, but no single candidate meets all of "
                   f"them ({bound} rules out the most)")
    return SearchError(
        f"no candidate of {len(cands)} meets the budgets you set: {'; '.join(parts)}{jointly}; failing: "
        f"{', '.join(failing)}",
        hint="lower search.constraints.speedup (or per target: {jetson-orin-nano: 2, default: 4}), raise "
             "latency_ms / max_params_m / max_macs_m, remove them to take the best each target reaches, "
             "or add smaller choices to search.space",
    )


class SearchStage(Stage):
    name = "search"

    def settings(self, ctx: RunContext) -> Any:
        return {"search": ctx.config.search.model_dump(mode="json"), "seed": ctx.config.seed,
                "teacher": {"model": ctx.config.teacher.model, "kwargs": ctx.config.teacher.kwargs},
                "data": ctx.data.fingerprint(), "targets": [t.model_dump(mode="json") for t in ctx.targets]}

    def section(self, result: StageResult) -> Section:
        assert isinstance(result.output, SearchOutput)
        return Section(stage="search", search=result.output.model_dump(mode="json"))

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.search
        seed = ctx.config.seed
        data = ctx.data
        in_force = ctx.budgets()
        space = ctx.search_space()
        xb, yb = data.train_sample(cfg.batch_size, seed)  # the one batch every candidate is scored on
        x, y = data.normalize(xb), yb
        t0 = time.perf_counter()
        teacher = ctx.teacher_architecture()  # at random init, as DisWOT prescribes
        teacher_sig, teacher_params = signature(teacher, x, y), count_params(teacher)
        budgets = constraints(ctx, in_force)

        last: dict[str, torch.nn.Module] = {}  # the network evaluate just built: one process times it as is

        def evaluate(genome):
            name, kwargs = space.model(genome)
            last.clear()
            return evaluate_candidate(space.key(genome), name, kwargs, genome, num_classes=data.num_classes,
                                      teacher=teacher_sig, x=x, y=y, budgets=budgets, seed=seed, built=last)

        timing = selective_timing(ctx, budgets, space, in_force.probes) if cfg.timing == "selective" else None

        def measure(cand: Candidate) -> None:  # a candidate the budgets probed before training is not timed again
            model, known = last.pop(cand.key, None), in_force.probes.get(cand.key)
            if timing is not None:
                timing.estimate(cand, model, known)
            else:
                time_candidate(cand, budgets, num_classes=data.num_classes, seed=seed, model=model, known=known)

        searcher = Searcher(space, evaluate, cfg, seed, ctx.reporter, measure)
        strategy = searcher.strategy()
        ctx.reporter.line(f"[cyan]search[/]: {space.name} space ({space.size()} architectures, {strategy}), "
                          f"budgets {escape(budgets.describe_line())}")
        ranked = searcher.run()
        if timing is not None:
            ranked = on_main(ranked, lambda: timing.confirm(ranked, lambda c: c.genome.get("space")))
        feasible = [c for c in ranked if c.feasible]
        if not feasible and timing is not None:  # settling compares timings, not predictions
            ranked = on_main(ranked, lambda: timing.time_all(ranked))
            feasible = [c for c in ranked if c.feasible]
        if not feasible:  # goals (defaults) no single candidate meets together: the closest sets them
            settled = settle_jointly(in_force, [(c.key, c.latency, not budgets.size_violations(c.params, c.macs)
                                                    and not budgets.latency_violations(c.latency, walls_only=True))
                                                   for c in ranked])
            if settled is None:
                atomic_write_json(out / "candidates.json", [c.as_dict() for c in ranked])
                raise no_feasible_error(ranked, budgets)
            in_force = settled
            budgets = constraints(ctx, in_force)
            for c in ranked:
                if c.latency:
                    c.violations = budgets.size_violations(c.params, c.macs) + budgets.latency_violations(c.latency)
            feasible = [c for c in ranked if c.feasible]
            for note in settled.notes[len(ctx.resolved_budgets().notes):]:
                ctx.reporter.line(f"[yellow]search[/]: {escape(note)}")
        front = mark_front(ranked, list(budgets.targets))
        seconds = time.perf_counter() - t0
        atomic_write_json(out / "candidates.json", [c.as_dict() for c in ranked])
        atomic_write_json(out / "budgets.json", in_force.as_dict())
        best = feasible[0]
        choice = {"model": best.model, "kwargs": best.kwargs, "genome": best.genome, "key": best.key,
                  "score": best.combined, "semantic": -best.semantic_distance, "relation": -best.relation_distance,
                  "params": best.params, "macs": best.macs, "latency": best.latency,
                  "alternatives": other_family_picks(feasible, data.num_classes)}
        atomic_write_json(out / "choice.json", choice)
        norm = searcher.normalizer
        metrics = {
            "space": space.name, "space_size": space.size(), "strategy": strategy, "evaluated": len(ranked),
            "feasible": len(feasible), "seconds": round(seconds, 2),
            "seconds_per_candidate": round(seconds / max(1, len(ranked)), 3),
            "score": cfg.score, "budgets": budgets.describe(),
            "timing": timing.summary(ranked) if timing is not None else {"mode": "all"},
            "normalizer": {"semantic_scale": norm.semantic_scale, "relation_scale": norm.relation_scale} if norm else None,
            "chosen": choice, "top": [c.as_dict() for c in ranked[: cfg.top_k]], "front": front,
            "teacher_point": teacher_point(ctx.budgets().teacher, teacher, teacher_sig, norm, teacher_params, data.image_size),
            "points": scatter_points(ranked, list(budgets.targets)),
        }
        name = escape(display_name(best.model, best.kwargs))
        if timing is not None and timing.fits:
            t = metrics["timing"]
            ctx.reporter.line(f"[cyan]search[/]: timed {t['timed']} of {t['timed'] + t['predicted']} candidates on host, "
                              f"the rest predicted ({escape(next(iter(timing.fits.values())).describe())})")
        ctx.reporter.line(f"[green]search[/]: chose {escape(best.key)} ({name}, {best.params / 1e6:.3f}M params, "
                          f"score {best.combined:.3f}) from {len(ranked)} candidates in {seconds:.1f} s")
        _warn_if_not_faster(ctx, best.latency, ctx.budgets().teacher)
        return StageResult(SearchOutput(**metrics), {"choice": out / "choice.json", "candidates": out / "candidates.json",
                                     "budgets": out / "budgets.json"})


def selective_timing(ctx: RunContext, budgets: Constraints, space: Any,
                     probes: dict[str, dict[str, Any]]) -> SelectiveTiming:
    """The search's host timing, fitted on a sample (by the process that times, under torchrun)."""
    n, seed = ctx.data.num_classes, ctx.config.seed
    timing = SelectiveTiming(budgets, lambda c: build_candidate(c.model, c.kwargs, n, seed), ctx.data.image_size)
    if dist.world().main:
        timing.calibrate(space, lambda g: build_candidate(*space.model(g), n, seed), probes, seed)
    return timing


def on_main(ranked: list[Candidate], work: Callable[[], None]) -> list[Candidate]:
    """``work`` (timing) done by one process; the others receive its latencies. Ranked again by fitness."""
    w = dist.world()
    if w.main:
        work()
    if w.active:
        got = dist.broadcast([(c.latency, c.violations) for c in ranked] if w.main else None)
        for c, (latency, violations) in zip(ranked, got, strict=True):
            c.latency, c.violations = latency, violations
    return sorted(ranked, key=fitness, reverse=True)


def _warn_if_not_faster(ctx: RunContext, student: dict[str, dict[str, Any]], teacher: dict[str, Any]) -> None:
    """A student no faster than its teacher on a target compresses nothing there: said before time is
    spent on it. Judged on the latencies the search timed, not on parameters: a ResNet with 3x a
    ViT's parameters ran 5x faster than it on this machine."""
    for name, est in student.items():
        t = teacher.get(name)
        if t is not None and est["ms"] >= t.ms:
            ctx.reporter.warn("search", f"on {name} the chosen student reads {est['ms']:.3g} ms, the teacher "
                                        f"{t.ms:.3g} ms: it will not be faster there; check search.space, or set "
                                        "search.constraints.speedup")


def other_family_picks(feasible: list[Any], num_classes: int) -> list[dict[str, Any]]:
    """The best-scored feasible candidate of each model family other than the pick's, in a space
    that mixes families (a ViT teacher's ViTs and ResNets): distill trains them too, since DisWOT
    favours the teacher's own family and that family is not always the one that learns best."""
    def family(c: Any) -> str:
        fam = family_of(build_model(c.model, num_classes, c.kwargs))
        return fam.name if fam is not None else "other"

    spaces = {c.genome.get("space") for c in feasible}
    if len(spaces) < 2:  # one space: one family of students
        return []
    seen, out = {family(feasible[0])}, []
    for space in dict.fromkeys(c.genome.get("space") for c in feasible):
        first = next(c for c in feasible if c.genome.get("space") == space)
        fam = family(first)
        if fam not in seen:
            seen.add(fam)
            out.append({"model": first.model, "kwargs": first.kwargs, "key": first.key, "family": fam,
                        "space": space, "score": first.combined, "params": first.params, "macs": first.macs,
                        "latency": first.latency})
    return out
