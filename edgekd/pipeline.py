"""Runs the configured stages in order over one run directory, with resume.

Each stage's input hash covers its own settings and the artifact hashes of every stage
before it, so changing the distill settings re-runs distill and everything after it on
``--resume``, while an untouched teacher is reused, and the run says why it re-runs a
stage (the changed keys, an earlier stage's new output, or files changed on disk). A stage
is recorded only once all its files are on disk; a failure or Ctrl-C keeps every stage
finished before it. The run folder is locked for the whole run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.markup import escape

from edgekd.core import dist
from edgekd.core.config import STAGE_ORDER, Config
from edgekd.core.errors import EdgeKDError
from edgekd.core.profiles import Profile, resolve_target
from edgekd.core.progress import Reporter
from edgekd.core.rundir import NO_SPACE, RunDir, atomic_write_text, hash_obj, no_space_error, sha256_tree
from edgekd.engines.latency.cache import use_timing_cache
from edgekd.engines.models.build import resolve_device
from edgekd.engines.reporting.build import build_report
from edgekd.engines.reporting.gates import GateSpec
from edgekd.engines.reporting.schema import Report
from edgekd.engines.tracking.mlflow_log import make_tracker
from edgekd.engines.train import sync_bn
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.bench import BenchStage
from edgekd.stages.context import RunContext
from edgekd.stages.distill import DistillStage
from edgekd.stages.export import ExportStage
from edgekd.stages.outputs import read_output
from edgekd.stages.prune import PruneStage
from edgekd.stages.quantize import QuantizeStage
from edgekd.stages.report import ReportStage
from edgekd.stages.search import SearchStage
from edgekd.stages.teacher import TeacherStage

log = logging.getLogger(__name__)

STAGES: dict[str, type[Stage]] = {
    "teacher": TeacherStage,
    "search": SearchStage,
    "distill": DistillStage,
    "prune": PruneStage,
    "quantize": QuantizeStage,
    "export": ExportStage,
    "bench": BenchStage,
    "report": ReportStage,
}
NEEDS_TRAINED_TEACHER = {"distill", "prune", "quantize", "export", "bench", "report"}
# Under torchrun every rank runs these (they train with DDP or split their scoring); rank 0
# alone runs the rest (export, bench, report) and alone writes the run folder.
COLLECTIVE = {"teacher", "search", "distill", "prune", "quantize"}
BUDGETED = {"search", "distill", "prune", "report"}  # stages that read the run's latency budgets


def resolve_targets(names: list[str], reporter: Reporter) -> list[Profile]:
    profiles = []
    for n in names:
        prof, note = resolve_target(n)
        if note:
            reporter.line(f"[dim]{escape(note)}[/]")
        if prof.name not in [p.name for p in profiles]:
            profiles.append(prof)
    return profiles


class Pipeline:
    def __init__(
        self,
        config: Config,
        targets: list[str] | None = None,
        *,
        resume: bool = False,
        force: bool = False,
        reporter: Reporter | None = None,
        command: str = "",
        gates: GateSpec | None = None,
    ) -> None:
        self.config = config
        self.gates = gates or GateSpec()
        self.reporter = reporter or Reporter()
        self.tracker = make_tracker(config, self.reporter.warn)  # ConfigError now, before any work, without MLflow
        self.target_names = list(targets) if targets else list(config.targets)
        self.targets = resolve_targets(self.target_names, self.reporter)
        self.resume, self.force, self.command = resume, force, command
        self._ran: set[str] = set()  # stages run (not restored) by this invocation
        self.run_dir = RunDir(Path(config.output_dir) / (config.name or "run"))

    def _context(self) -> RunContext:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        use_timing_cache(self.config.bench.timing_cache)
        device = dist.device_for_rank(resolve_device(self.config.device))
        self.world = dist.init(device)
        if not self.world.main:  # rank 0 speaks for the run
            self.reporter = Reporter(quiet=True)
        ctx = RunContext(self.config, self.run_dir, self.targets, self.reporter, device, command=self.command)
        ctx.gates = self.gates
        return ctx

    def plan(self) -> list[str]:
        """The stages a full run goes through: the teacher first when any stage needs it trained."""
        stages = list(self.config.stages)
        return (["teacher"] if NEEDS_TRAINED_TEACHER & set(stages) else []) + stages

    def run(self, only: list[str] | None = None) -> Report | None:
        """Run every configured stage, or with ``only`` just those stages on top of an earlier run.

        With ``only`` (the per-stage commands: ``edgekd prune`` ...), stages before the first
        asked-for one are restored from the manifest as they are (the teacher is trained if
        the run has none), and the asked-for stages always run. Under torchrun only rank 0
        returns the report (the other ranks return None once their last collective stage is done).
        """
        ok = False
        try:
            report = self._run(only)
            ok = True
            return report
        except EdgeKDError as exc:  # say what is kept only when something is
            exc.finished_stages = list(getattr(self.run_dir, "manifest", {}).get("stages", {}))
            w = getattr(self, "world", None)
            if w is not None and w.active:  # torchrun prints every rank's output: say whose it is
                exc.message = f"rank {w.rank} of {w.size}: {exc.message}"
            raise
        finally:
            self.tracker.finish(ok)
            self.run_dir.close()

    def _run(self, only: list[str] | None) -> Report | None:
        single = only is not None
        ctx = self._context()
        if self.world.main:
            self.run_dir.open(resume=self.resume or single, force=self.force and not single)
            if self.run_dir.lock.note:
                self.reporter.line(f"[yellow]run[/]: {escape(self.run_dir.lock.note)}")
            resolved = self.config.model_copy(update={"targets": self.target_names})  # the targets this run has
            atomic_write_text(self.run_dir.root / "config.yaml",
                              yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False))
            if not single or "targets" not in self.run_dir.manifest:
                self.run_dir.manifest["targets"] = self.target_names  # as given: names, aliases or profile paths
            self._history(ctx, rerender=only == ["report"])
            self.tracker.start(self.config, self.command, self.run_dir.root)
        dist.barrier()  # the other ranks read the run folder only once rank 0 holds it
        if not self.world.main and self.run_dir.manifest_path.exists():
            self.run_dir.load()
        upstream: dict[str, dict[str, str]] = {}
        if not single:
            plan = self.plan()
            if BUDGETED & set(plan):
                self._budgets(ctx)
            for i, name in enumerate(plan):
                if not self.world.main and not COLLECTIVE & set(plan[i:]):
                    return None  # nothing left that needs this rank
                self._run_stage(STAGES[name](), ctx, upstream, allow_skip=self.resume)
            return self._finish(ctx)
        order = ["teacher", *[s for s in STAGE_ORDER if s in self.config.stages or s in only]]
        first = min(order.index(s) for s in only)
        done = self.run_dir.manifest["stages"]
        for name in order:
            if not self.world.main and not COLLECTIVE & set(order[order.index(name):]):
                return None
            if name in only:
                self._run_stage(STAGES[name](), ctx, upstream, allow_skip=False)
            elif order.index(name) < first and name in done:
                ctx.results[name] = self._restore(name, done[name])
                ctx.sections[name] = STAGES[name]().section(ctx.results[name])
                upstream[name] = {k: a["sha256"] for k, a in done[name]["artifacts"].items()}
                self._recorded(name, ctx, done[name])
            elif name == "teacher" and NEEDS_TRAINED_TEACHER & set(only):
                self._run_stage(STAGES[name](), ctx, upstream, allow_skip=True)
        return self._finish(ctx)

    def _budgets(self, ctx: RunContext) -> None:
        """The run's budgets, resolved before any training: a budget the user wrote that no
        candidate reaches fails here in seconds, and a default out of reach is said up front."""
        t0 = time.perf_counter()
        budgets = ctx.resolved_budgets()
        for note in budgets.notes:
            self.reporter.line(f"[cyan]budgets[/]: {escape(note)}")
        self.reporter.plain(f"budgets: resolved in {time.perf_counter() - t0:.1f} s")

    def _history(self, ctx: RunContext, *, rerender: bool) -> None:
        """A run records its command; a re-render (``edgekd report``) keeps that record and the
        stages' resumed flags as the run wrote them, and adds itself to ``renders``."""
        manifest = self.run_dir.manifest
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if not rerender:
            manifest["run"] = {"command": self.command, "at": now, "resumed": {}}
            manifest["renders"] = []
            return
        ctx.original = manifest.get("run") or previous_report_history(self.run_dir.root)
        manifest.setdefault("renders", []).append({"command": self.command, "at": now})
        ctx.renders = list(manifest["renders"])

    def _recorded(self, name: str, ctx: RunContext, rec: dict[str, Any]) -> None:
        """After a stage ran or was restored: its resumed flag for the run's record, and the tracker."""
        if not self.world.main:  # rank 0 keeps the record and tracks
            return
        result = ctx.results[name]
        if "resumed" in self.run_dir.manifest.get("run", {}) and ctx.original is None:
            self.run_dir.manifest["run"]["resumed"][name] = result.skipped
        self.tracker.stage(name, settings=rec.get("settings"), metrics=result.output.as_dict(), artifacts=result.artifacts,
                           seconds=rec.get("seconds"), resumed=result.skipped)

    def _finish(self, ctx: RunContext) -> Report | None:
        if not self.world.main:  # only rank 0 writes and reports
            return None
        self.run_dir.save()  # the run's record (command, resumed flags, renders)
        return build_report(ctx.facts())

    @staticmethod
    def _input_hash(stage: Stage, settings: object, upstream: dict[str, dict[str, str]]) -> str:
        return hash_obj({"stage": stage.name, "settings": settings, "upstream": upstream})

    def _say_why_rerun(self, name: str, h: str, settings: object, upstream: dict[str, dict[str, str]]) -> None:
        """One line on why a stage done earlier runs again; stages after a re-run one follow silently."""
        old = self.run_dir.manifest["stages"].get(name)
        why = rerun_reason(old, h, settings, upstream, self.run_dir.root, self._ran) if old else None
        if why:
            after = "" if name == self.plan()[-1] else " and the stages after it"
            self.reporter.line(f"[yellow]{name}[/]: {escape(why)}, re-running {name}{after}")

    def _restore(self, name: str, rec: dict) -> StageResult:
        """A stage done earlier, as the manifest recorded it (its output read back through its type)."""
        root = self.run_dir.root
        return StageResult(read_output(name, rec["metrics"]), {k: root / a["path"] for k, a in rec["artifacts"].items()},
                           skipped=True)

    def _run_stage(self, stage: Stage, ctx: RunContext, upstream: dict[str, dict[str, str]], allow_skip: bool = True) -> None:
        if not self.world.main:
            return self._follow_stage(stage, ctx, upstream)
        settings = stage.settings(ctx)
        h = self._input_hash(stage, settings, upstream)
        rec = self.run_dir.finished(stage.name, h) if allow_skip else None
        if stage.name in COLLECTIVE:
            dist.broadcast(rec is None)  # the other ranks run it with rank 0, or restore it too
        if rec is not None:
            ctx.results[stage.name] = self._restore(stage.name, rec)
            self.reporter.line(f"[dim]{stage.name}: done earlier with the same inputs, skipped (--resume)[/]")
        else:
            if allow_skip:
                self._say_why_rerun(stage.name, h, settings, upstream)
            self.run_dir.forget(stage.name)
            out = self.run_dir.stage_dir(stage.name, clean=True)
            t0 = time.perf_counter()
            self.reporter.stage_started(stage.name)
            sync_bn.take_record()  # from here: what this stage's training did with BatchNorm
            result = _run_checked(stage, ctx, out)
            self.reporter.stage_done(stage.name, time.perf_counter() - t0)
            self.run_dir.record_stage(stage.name, input_hash=h, artifacts=result.artifacts,
                                      metrics=result.output.as_dict(), seconds=time.perf_counter() - t0,
                                      device=str(ctx.device), settings=settings, upstream=upstream,
                                      world=self._world_record() if stage.name in COLLECTIVE else None)
            ctx.results[stage.name] = result
            self._ran.add(stage.name)
            rec = self.run_dir.manifest["stages"][stage.name]
            if stage.name in COLLECTIVE:
                dist.barrier()  # recorded: the other ranks may read it
        ctx.sections[stage.name] = stage.section(ctx.results[stage.name])
        upstream[stage.name] = {k: a["sha256"] for k, a in rec["artifacts"].items()}
        self._recorded(stage.name, ctx, rec)

    def _world_record(self) -> dict[str, Any]:
        """The processes and backend a collective stage ran with and, when it trained under
        torchrun, whether BatchNorm was synchronised over the ranks."""
        batchnorm = sync_bn.take_record()
        return {**self.world.describe(), **({"batchnorm": batchnorm} if batchnorm else {})}

    def _follow_stage(self, stage: Stage, ctx: RunContext, upstream: dict[str, dict[str, str]]) -> None:
        """A rank other than 0: run a collective stage with rank 0 into a scratch folder that is
        thrown away (only rank 0 writes the run folder), then take rank 0's recorded result."""
        if stage.name not in COLLECTIVE:
            return
        if dist.broadcast(None):
            with tempfile.TemporaryDirectory(prefix=f"edgekd-rank{self.world.rank}-") as scratch:
                stage.run(ctx, Path(scratch))
            dist.barrier()
            self.run_dir.load()
        rec = self.run_dir.manifest["stages"][stage.name]
        ctx.results[stage.name] = self._restore(stage.name, rec)
        ctx.sections[stage.name] = stage.section(ctx.results[stage.name])
        upstream[stage.name] = {k: a["sha256"] for k, a in rec["artifacts"].items()}


def previous_report_history(root: Path) -> dict[str, Any] | None:
    """The command and resumed flags of the report a run wrote before edgekd kept them in the manifest."""
    try:
        old = json.loads((root / "report" / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return {"command": old.get("command", ""),
            "resumed": {k: bool(v.get("resumed")) for k, v in (old.get("stages") or {}).items()}}


def _run_checked(stage: Stage, ctx: RunContext, out: Path) -> StageResult:
    """``stage.run``, with a full disk met outside the atomic writers reported like theirs."""
    try:
        return stage.run(ctx, out)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise no_space_error(exc.filename or out) from None
        raise


def rerun_reason(old: dict[str, Any], input_hash: str, settings: Any, upstream: dict[str, dict[str, str]],
                 root: Path, ran: set[str]) -> str | None:
    """Why the recorded stage ``old`` cannot be reused; None when a stage re-run by this
    invocation (in ``ran``) explains it, since that one already said so."""
    if old.get("input_hash") == input_hash:
        changed = [a["path"] for a in old.get("artifacts", {}).values()
                   if not (root / a["path"]).exists() or sha256_tree(root / a["path"]) != a["sha256"]]
        return f"its files changed on disk ({', '.join(changed) or 'unknown'})"
    if "settings" not in old:  # recorded by an edgekd that did not keep them
        return "settings or an earlier stage's output changed"
    changes = settings_diff(old["settings"], json.loads(json.dumps(settings, default=str)))
    if changes:
        return f"settings changed ({changes})"
    before = old.get("upstream", {})
    moved = [s for s in {**before, **upstream} if before.get(s) != upstream.get(s)]
    if moved and set(moved) <= ran:
        return None
    return f"an earlier stage's output changed ({', '.join(moved) or 'unknown'})"


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` → ``{"a.b.0": 1}``: settings as dotted config keys."""
    if isinstance(obj, dict) and obj:
        items = obj.items()
    elif isinstance(obj, list) and obj:
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def settings_diff(old: Any, new: Any, show: int = 3) -> str:
    """``distill.epochs 1 → 2, seed 0 → 1 +2 more``; empty when nothing differs."""
    a, b = _flatten(old), _flatten(new)
    keys = [k for k in {**a, **b} if a.get(k, _UNSET) != b.get(k, _UNSET)]

    def show_value(d: dict[str, Any], k: str) -> str:
        text = json.dumps(d[k], default=str) if k in d else "unset"
        return text if len(text) <= 40 else text[:37] + "..."

    parts = [f"{k} {show_value(a, k)} → {show_value(b, k)}" for k in keys[:show]]
    return ", ".join(parts) + (f" +{len(keys) - show} more" if len(keys) > show else "")


_UNSET = object()
