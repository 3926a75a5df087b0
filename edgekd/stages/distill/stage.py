"""Distill: train the student from the teacher with the shared trainer.

Two student sources when the student was searched: the DisWOT pick, and the trained teacher
pruned to the same latency budget (sources.py); the more accurate goes on. Then the same
student is trained without the teacher (``compare_baseline``, on by default for data held in
memory: same start, epochs, optimizer, augmentation; labels only) and the better of the two
is shipped: KD is never worse than no KD, and the report says which won and by how much.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from edgekd.core.config import LossTerm, ModelRef, TrainConfig
from edgekd.core.errors import ModelError
from edgekd.engines.models.artifact import ModelSpec, save_model
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import load_weights
from edgekd.engines.models.names import display_name
from edgekd.engines.models.stats import model_stats
from edgekd.engines.reporting.schema import ModelRow
from edgekd.engines.reporting.sections import Section, student_names, trained_model_section
from edgekd.engines.train.effects import distillation_effects
from edgekd.engines.train.evaluate import predict
from edgekd.engines.train.race import Race
from edgekd.engines.train.teacher_memo import TeacherMemo
from edgekd.engines.train.trainer import TrainResult, train
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext, warn_if_larger_than_teacher
from edgekd.stages.distill.sources import prune_teacher
from edgekd.stages.outputs import DistillOutput, TeacherOutput


def search_choice(ctx: RunContext) -> dict[str, Any] | None:
    """The search stage's choice.json, when this run searched."""
    search = ctx.results.get("search")
    if search is None or "choice" not in search.artifacts:
        return None
    return json.loads(Path(search.artifacts["choice"]).read_text())


def student_ref(ctx: RunContext) -> ModelRef:
    """The configured student, or the architecture the search stage chose."""
    choice = search_choice(ctx)
    if choice is not None:
        return ModelRef(model=choice["model"], kwargs=choice.get("kwargs", {}))
    if ctx.config.student is None:
        raise ModelError("no student: none configured and no search result in this run",
                         hint="set student: {model: <timm name>} or add 'search' to stages")
    return ctx.config.student


class DistillStage(Stage):
    name = "distill"
    memo: TeacherMemo | None = None  # the teacher's logits per batch, shared by this stage's KD runs

    def settings(self, ctx: RunContext) -> Any:
        student = ctx.config.student.model_dump(mode="json") if ctx.config.student else None
        return {"distill": ctx.config.distill.model_dump(mode="json"), "student": student,
                "seed": ctx.config.seed, "data": ctx.data.fingerprint()}

    def section(self, result: StageResult) -> Section:
        """The student, and (when measured) its no-teacher baseline and what KD gained."""
        m = result.output.as_dict()
        sec = trained_model_section("distill", "student", m)
        if len(m.get("sources") or {}) > 1:
            sec.comparisons["student_sources"] = {"sources": m["sources"], "chosen": m.get("source"),
                                                  "notes": m.get("notes", []), "race": m.get("race")}
        if "baseline" in m:
            names = student_names(m.get("shipped", "kd"))
            other = "with_teacher" if m.get("shipped") == "plain" else "without_teacher"
            kept = m.get("kd") if other == "with_teacher" else m["baseline"]  # the student that is not shipped
            sec.models.append(ModelRow(label=names[other], model=m["model"], kwargs=m.get("kwargs") or {},
                                       accuracy=kept.get("accuracy") if kept else m.get("kd_accuracy"),
                                       params=m.get("params"), macs=m.get("macs"),
                                       stage="distill (with the teacher)" if other == "with_teacher"
                                       else "distill (no teacher)"))
            if kept and kept.get("history"):
                sec.histories[names[other]] = kept["history"]
            sec.comparisons["distillation"] = {"names": names,
                "student": m["model"], "with_teacher": m.get("kd_accuracy", m["accuracy"]),
                "without_teacher": m["baseline"]["accuracy"], "shipped": m.get("shipped", "kd"),
                "gain_points": m["kd_gain"], "teacher": m.get("teacher_accuracy"), "epochs": len(m["history"]),
            }
        side = m.get("side_model")
        if side:
            src = m.get("sources", {}).get("teacher_pruned", {})
            sec.models.append(ModelRow(label=side["label"], model=side["model"], kwargs=side.get("kwargs") or {},
                                       accuracy=side["accuracy"], params=src.get("params"), macs=src.get("macs"),
                                       stage=f"distill (the teacher, pruned; serves {', '.join(side['serves'])})"))
        if m.get("effects"):
            sec.distillation_effects = m["effects"]
        return sec

    @staticmethod
    def _effects(ctx: RunContext, student: torch.nn.Module, baseline: torch.nn.Module | None) -> dict[str, Any]:
        """Calibration (ECE) and per-class accuracy of teacher, student and baseline on every
        validation image: what distillation changed beyond top-1 (train/effects.py)."""
        models = {"teacher": ctx.teacher() if "teacher" in ctx.model_dirs() else None,
                  "student": student, "baseline": baseline}
        logits, labels = {}, None
        for name, model in models.items():
            if model is not None:
                logits[name], labels = predict(model.to(ctx.device), ctx.device_data, ctx.device)
        assert labels is not None
        return distillation_effects(logits, labels, ctx.data.class_names)

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.distill
        ref = student_ref(ctx)
        key = "search.space" if "search" in ctx.results else "student.model"
        teacher = ctx.teacher() if cfg.uses_teacher else None

        def fresh():  # seeded: the same initial weights for the KD student and its no-teacher baseline
            torch.manual_seed(ctx.config.seed)
            m = build_model(ref.model, ctx.data.num_classes, ref.kwargs, what=key)
            if ref.checkpoint:
                load_weights(m, ref.checkpoint, num_classes=ctx.data.num_classes, what="student checkpoint")
            return m

        teacher_out = ctx.output(TeacherOutput)
        teacher_params = teacher_out.params if teacher_out is not None else None
        searched = Trained("search" if "search" in ctx.results else "configured", ref.model, dict(ref.kwargs), fresh,
                           cfg)
        if key == "student.model":  # a searched student was judged on its timed latency by the search
            warn_if_larger_than_teacher(ctx, "distill", searched.model, teacher_params, key)
        race = self._race(ctx)
        self.memo = TeacherMemo()  # every KD run draws the same batches: the teacher's forward runs once per batch
        self._train(ctx, searched, teacher, "distill", race)
        pool, notes = [searched, *self._other_families(ctx, teacher, race)], []
        if self._teacher_pruned_wanted(ctx):
            alt, why = self._teacher_pruned(ctx, teacher, race)
            notes.append(why)
            if alt is not None:
                pool.append(alt)
        if self._baseline_wanted(ctx):  # every source also on labels alone: each is judged by its better run
            for t in pool:
                t.plain = self._baseline(ctx, t, race)
        chosen = self._choose_source(ctx, pool, notes)
        return self._finish(ctx, out, chosen, pool, chosen.plain, notes, race)

    @staticmethod
    def _race(ctx: RunContext) -> Race | None:
        """The race of the student runs (engines/train/race.py), unless distill.race is null."""
        cfg = ctx.config.distill
        rule = cfg.race
        return Race(cfg.epochs, tuple(rule.at), rule.margin) if rule is not None else None

    def _train(self, ctx: RunContext, t: Trained, teacher: torch.nn.Module | None, label: str,
               race: Race | None) -> None:
        losses = "+".join(x.name for x in t.cfg.loss)
        name = display_name(t.model_name, t.kwargs) + (" (the teacher, pruned)" if t.source == "teacher_pruned" else "")
        ctx.reporter.line(f"[cyan]distill[/]: {escape(name)} from the teacher ({losses}, {t.cfg.epochs} epochs)")
        t.result = train(t.model, ctx.device_data, t.cfg, teacher=teacher, device=ctx.device, seed=ctx.config.seed,
                         reporter=ctx.reporter, label=f"{label} {name}",
                         stop=race.for_run(t.source) if race is not None else None, memo=self.memo)

    def _other_families(self, ctx: RunContext, teacher: torch.nn.Module | None, race: Race | None) -> list[Trained]:
        """The best-scored candidate of each other family the search weighed (search/choice.json's
        ``alternatives``), trained like the searched student: DisWOT favours the teacher's own
        family, and a small ViT learns less from few images than a ResNet of the same speed."""
        if not ctx.config.distill.other_families:
            return []
        out = []
        for alt in (search_choice(ctx) or {}).get("alternatives", []):
            def fresh(alt: dict[str, Any] = alt) -> torch.nn.Module:
                torch.manual_seed(ctx.config.seed)
                return build_model(alt["model"], ctx.data.num_classes, alt["kwargs"], what="search.space")

            t = Trained(f"search_{alt['space']}", alt["model"], dict(alt["kwargs"]), fresh, ctx.config.distill,
                        latency=alt.get("latency") or {}, serves=sorted(ctx.budgets().limits()))
            self._train(ctx, t, teacher, "distill", race)
            out.append(t)
        return out

    @staticmethod
    def _teacher_pruned_wanted(ctx: RunContext) -> bool:
        """auto: when the student comes from the search and the teacher has trained weights to start from."""
        setting = ctx.config.distill.teacher_pruned
        has_teacher = "teacher" in ctx.model_dirs()
        return has_teacher and (setting is True or (setting == "auto" and "search" in ctx.results))

    @staticmethod
    def _baseline_wanted(ctx: RunContext) -> bool:
        """auto: for data held in memory (cheap to train twice); streamed folders only when asked."""
        setting = ctx.config.distill.compare_baseline
        return setting is True or (setting == "auto" and ctx.data.in_memory)

    def _teacher_pruned(self, ctx: RunContext, teacher: torch.nn.Module | None,
                        race: Race | None) -> tuple[Trained | None, str]:
        pt, why = prune_teacher(ctx, ctx.budgets(), (search_choice(ctx) or {}).get("macs"))
        if pt is None:
            ctx.reporter.line(f"[yellow]distill[/]: the teacher, pruned, is not a candidate: {escape(why)}")
            return None, f"teacher pruned: not a candidate ({why})"
        snapshot = copy.deepcopy(pt.model)
        cfg = ctx.config.distill.model_copy(update={"optimizer": ctx.config.prune.finetune.optimizer})
        t = Trained("teacher_pruned", pt.spec.model, dict(pt.spec.kwargs), lambda: copy.deepcopy(snapshot), cfg,
                    pruning_history=pt.spec.pruning_history, latency=pt.latency, serves=pt.serves)
        self._train(ctx, t, teacher, "distill", race)
        return t, f"teacher pruned: {why}, {(pt.macs or 0) / 1e6:.3g} M MACs, fine-tuned with " \
                  f"prune.finetune's optimizer (it starts from trained weights)"

    @staticmethod
    def _choose_source(ctx: RunContext, pool: list[Trained], notes: list[str]) -> Trained:
        """The source the run continues with (prune, quantize): the more accurate of those that
        serve every target (with or without the teacher, whichever trained it better); a tie:
        the faster. A source that serves only some targets ships as its own file and competes
        there (``_finish``)."""
        if len(pool) == 1:
            return pool[0]
        choice = search_choice(ctx) or {}
        pool[0].latency = choice.get("latency") or {}
        pool[0].serves = sorted(ctx.budgets().limits())

        def worst_ms(t: Trained) -> float:
            return max((e["ms"] for e in t.latency.values()), default=float("inf"))

        every = set(ctx.budgets().limits())
        full = [t for t in pool if every <= set(t.serves)] or pool
        best = max(full, key=lambda t: (round(t.best_accuracy, 3), -worst_ms(t)))
        others = [t for t in pool if t is not best]
        line = (f"{best.source} {best.described()} vs "
                + ", ".join(f"{o.source} {o.described()}" for o in others) + f": continuing with {best.source}")
        for other in (o for o in others if o not in full):
            line += (f"; {other.source} serves {', '.join(other.serves)} only and ships as its own file there "
                     "where it wins")
        notes.append(line)
        ctx.reporter.line(f"[green]distill[/]: student source: {escape(line)}")
        return best

    @staticmethod
    def _baseline(ctx: RunContext, chosen: Trained, race: Race | None) -> Trained:
        """The chosen student trained on labels alone, same start, epochs and optimizer."""
        base = Trained(chosen.source, chosen.model_name, chosen.kwargs, chosen.make,
                       chosen.cfg.model_copy(update={"loss": [LossTerm(name="ce")]}),
                       pruning_history=chosen.pruning_history, latency=chosen.latency, serves=chosen.serves)
        name = display_name(chosen.model_name, chosen.kwargs)
        base.result = train(base.model, ctx.device_data, base.cfg, device=ctx.device, seed=ctx.config.seed,
                            reporter=ctx.reporter, label=f"baseline {name} (no teacher)",
                            stop=race.for_run(f"{chosen.source} (no teacher)") if race is not None else None)
        return base

    def _finish(self, ctx: RunContext, out: Path, chosen: Trained, pool: list[Trained], baseline: Trained | None,
                notes: list[str], race: Race | None = None) -> StageResult:
        plain_wins = baseline is not None and baseline.accuracy > chosen.accuracy
        shipped = baseline if plain_wins else chosen
        assert shipped is not None and shipped.result is not None
        teacher_out = ctx.output(TeacherOutput)
        teacher_acc = teacher_out.accuracy if teacher_out is not None else None
        metrics: dict[str, Any] = {
            "model": shipped.model_name, "kwargs": shipped.kwargs, "source": shipped.source,
            "loss": [t.spec() for t in shipped.cfg.loss], **shipped.result.metrics(),
            **model_stats(shipped.model, ctx.data.image_size), "teacher_accuracy": teacher_acc,
            "kd_accuracy": round(chosen.accuracy, 3), "shipped": "plain" if plain_wins else "kd",
            "sources": {t.source: t.summary(ctx.data.image_size) for t in pool}, "notes": notes}
        artifacts = {"model:student": save_model(shipped.model, shipped.spec(ctx, "student"), out / "model")}
        if baseline is not None:
            assert baseline.result is not None
            metrics["baseline"] = {"loss": "ce", **baseline.result.metrics()}
            metrics["kd_gain"] = round(chosen.accuracy - baseline.accuracy, 3)
            artifacts["baseline"] = save_model(baseline.model, baseline.spec(ctx, "baseline"), out / "baseline")
            if plain_wins:
                artifacts["kd"] = save_model(chosen.model, chosen.spec(ctx, "student"), out / "kd")
                metrics["kd"] = {"loss": [t.spec() for t in chosen.cfg.loss], **chosen.result.metrics()}
                line = (f"trained without the teacher it reached {baseline.accuracy:.2f}% against "
                        f"{chosen.accuracy:.2f}% with it: the plain student is shipped")
                notes.append(line)
                ctx.reporter.warn("distill", f"KD did not pay: {line}")
        every = set(ctx.budgets().limits())
        for t in pool:
            if t is chosen:
                continue
            ship = t.plain if t.plain is not None and t.plain.accuracy > t.accuracy else t
            folder = save_model(ship.model, ship.spec(ctx, "student"), out / "alternative" / t.source)
            artifacts[f"alternative:{t.source}"] = folder
            if t.source == "teacher_pruned" and t.serves and not every <= set(t.serves):
                artifacts["model:teacher_pruned"] = folder  # exported, benched, chosen per target where it wins
                metrics["side_model"] = {"label": "teacher_pruned", "serves": t.serves, "accuracy":
                                         round(ship.accuracy, 3), "trained": "kd" if ship is t else "plain",
                                         "model": t.model_name, "kwargs": t.kwargs}
        if race is not None and len(race.curves) > 1:
            metrics["race"] = race.record()
        if self.memo is not None and self.memo.hits:
            metrics["teacher_forwards"] = {"computed": self.memo.misses, "reused": self.memo.hits}
        # what distillation changed: the KD student against the same student on labels alone
        metrics["effects"] = self._effects(ctx, chosen.model, baseline.model if baseline is not None else None)
        name = display_name(shipped.model_name, shipped.kwargs)
        gain = f", without the teacher {baseline.accuracy:.2f}%" if baseline is not None else ""
        ctx.reporter.line(f"[green]distill[/]: {escape(name)} ({shipped.source}) {chosen.accuracy:.2f}% "
                          f"with the teacher{gain}")
        return StageResult(DistillOutput(**metrics), artifacts)


@dataclass
class Trained:
    """One student: where it comes from, how it starts, how it trains, what it reached."""

    source: str  # search (or the configured student) | search_<space> (another family) | teacher_pruned
    model_name: str
    kwargs: dict[str, Any]
    make: Callable[[], torch.nn.Module]  # the starting network, the same on every call (KD and baseline alike)
    cfg: TrainConfig
    pruning_history: list[Any] | None = None
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> estimate
    serves: list[str] = field(default_factory=list)  # targets whose latency budget it meets
    result: TrainResult | None = None
    plain: Trained | None = None  # the same start trained on labels alone (compare_baseline)
    model: torch.nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.model = self.make()

    @property
    def accuracy(self) -> float:
        assert self.result is not None
        return self.result.best_accuracy

    @property
    def best_accuracy(self) -> float:
        """With the teacher or without it, whichever is higher: what this source can ship."""
        return max(self.accuracy, self.plain.accuracy if self.plain is not None else float("-inf"))

    def described(self) -> str:
        return f"{self.accuracy:.2f}%" + (f" (without the teacher {self.plain.accuracy:.2f}%)" if self.plain else "")

    def spec(self, ctx: RunContext, role: str) -> ModelSpec:
        return ModelSpec(self.model_name, ctx.data.num_classes, dict(self.kwargs), ctx.data.preprocessing(),
                         pruning_history=self.pruning_history, role=role, info={"accuracy": self.accuracy})

    def summary(self, size: int) -> dict[str, Any]:
        plain = {"plain_accuracy": round(self.plain.accuracy, 3)} if self.plain is not None else {}
        for key, run in (("stopped", self), ("plain_stopped", self.plain)):
            if run is not None and run.result is not None and run.result.stopped:
                plain[key] = run.result.stopped
        return {"model": self.model_name, "kwargs": self.kwargs, "accuracy": round(self.accuracy, 3), **plain,
                "latency": self.latency, "serves": self.serves, **model_stats(self.model, size)}
