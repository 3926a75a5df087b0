"""The stage interface and the run context every stage reads from.

Every stage has the same shape (scikit-learn's uniform-estimator habit): a ``name``, a
``settings(ctx)`` that says what its result depends on besides earlier stages' outputs,
and ``run(ctx, out) -> StageResult`` that writes only into its own folder ``out``. A stage
never reaches into another stage's internals: it reads the artifacts and metrics the
context holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from rich.markup import escape
from torch import nn

from edgekd.core.config import Config, ConstraintsConfig, LossTerm, TrainConfig
from edgekd.core.errors import ConfigError, ModelError
from edgekd.core.profiles import Profile
from edgekd.core.progress import Reporter
from edgekd.core.rundir import RunDir
from edgekd.data.bundle import Data
from edgekd.latency.budgets import TargetBudget, best_latency, teacher_budget
from edgekd.latency.oracle import LatencyEstimate
from edgekd.models.input_contract import load_run_data
from edgekd.plan import RunPlan, plan_run
from edgekd.reporting.gates import GateSpec
from edgekd.reporting.sections import RunFacts, Section

MODEL_ORDER = ("teacher", "student", "pruned", "quantized")


@dataclass
class StageResult:
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    skipped: bool = False  # restored from the manifest by --resume


class RunContext:
    """What the stages share: config, run folder, targets, data, teacher, earlier results."""

    def __init__(
        self,
        config: Config,
        run: RunDir,
        targets: list[Profile],
        reporter: Reporter,
        device: torch.device,
        command: str = "",
    ) -> None:
        self.config = config
        self.command = command  # as typed by the user, for the report
        self.run = run
        self.targets = targets
        self.plan: RunPlan = plan_run(config, targets)  # target-dependent decisions, made once
        self.reporter = reporter
        self.device = device
        self.results: dict[str, StageResult] = {}
        self.sections: dict[str, Section] = {}  # each finished stage's part of the report
        self.gates = GateSpec()  # CI gates the report checks (--fail-under-accuracy, --fail-over-latency)
        self.original: dict[str, Any] | None = None  # a re-render: the command and resumed flags of the run itself
        self.renders: list[dict[str, Any]] = []  # re-renders of this run (`edgekd report`), oldest first
        self._data: Data | None = None
        self._device_data: Data | None = None
        self.data_notes: list[str] = []
        self._teacher: nn.Module | None = None
        self._teacher_latency: dict[str, LatencyEstimate] | None = None

    @property
    def data(self) -> Data:
        """The data set on the CPU, loaded once per run under the teacher's input contract."""
        if self._data is None:
            self._data, self.data_notes = load_run_data(self.config)
            d = self._data
            if d.in_memory:
                crop = [k for k, t in training_configs(self.config).items() if t.augment.crop_scale is not None]
                if crop:
                    raise ConfigError(f"{crop[0]}.augment.crop_scale needs images streamed from a folder, but "
                                      f"this data set is held in memory at the input size",
                                      hint="set data.stream: true (image folders), or remove augment.crop_scale")
            how = "in memory" if d.in_memory else f"streamed by {getattr(d, 'workers', 0)} DataLoader workers"
            self.reporter.line(f"[cyan]data[/]: {escape(d.name)}, {d.num_train} train / {d.num_val} validation images, "
                               f"{d.num_classes} classes, {how}")
            self.reporter.line(f"[cyan]input[/]: {escape(d.preprocess.describe())} ({escape(input_sources(d))})")
            for note in self.data_notes:
                self.reporter.line(f"[yellow]data[/]: {escape(note)}")
        return self._data

    @property
    def device_data(self) -> Data:
        """The data set moved once to the training device."""
        if self._device_data is None:
            self._device_data = self.data.to(self.device)
        return self._device_data

    def model_dirs(self) -> dict[str, Path]:
        """Model artifacts produced so far, by label, in pipeline order."""
        found = {}
        for res in self.results.values():
            for key, path in res.artifacts.items():
                if key.startswith("model:"):
                    found[key.split(":", 1)[1]] = path
        return {k: found[k] for k in MODEL_ORDER if k in found}

    def latest_student(self) -> tuple[str, Path]:
        """The most compressed model so far (what the next stage should take)."""
        models = {k: v for k, v in self.model_dirs().items() if k != "teacher"}
        if not models:
            raise ModelError(
                "no student model yet: this stage needs the output of distill (or prune)",
                hint="add 'distill' to stages, or resume a run that has it",
            )
        label = list(models)[-1]
        return label, models[label]

    def input_student(self, out: Path) -> tuple[str, Path]:
        """The model a compression stage starts from: the run's latest student, else the
        configured ``student.checkpoint`` (weights, or an edgekd model folder), imported
        into ``out/input`` so the run stays self-contained."""
        models = {k: v for k, v in self.model_dirs().items() if k != "teacher"}
        if models:
            label = list(models)[-1]
            return label, models[label]
        ref = self.config.student
        if ref is None or ref.checkpoint is None:
            raise ModelError(
                "no student to start from: this run has no distilled model and student.checkpoint is not set",
                hint="add 'distill' to stages, resume a run that has it, or set student: {model: ..., checkpoint: ...}",
            )
        from edgekd.models.artifact import ModelSpec, load_model, save_model
        from edgekd.models.build import build_model
        from edgekd.models.checkpoint import load_weights

        ckpt = Path(ref.checkpoint)
        if (ckpt / "model.json").exists():
            model, spec = load_model(ckpt)
        else:
            model = build_model(ref.model, self.data.num_classes, ref.kwargs, what="student.model")
            load_weights(model, ckpt, num_classes=self.data.num_classes, what="student checkpoint")
            spec = ModelSpec(ref.model, self.data.num_classes, dict(ref.kwargs), self.data.preprocessing())
        return "student", save_model(model, spec, out / "input")

    def facts(self) -> RunFacts:
        """What the report is built from (reporting sits below the stages: it gets facts, not the context)."""
        resumed = {name: r.skipped for name, r in self.results.items()}
        command = self.command
        if self.original is not None:  # re-rendered: the report keeps the run's own history
            command = self.original.get("command", command)
            resumed.update(self.original.get("resumed", {}))
        return RunFacts(root=self.run.root, command=command, targets=self.targets, data=self.data,
                        data_notes=self.data_notes, plan=self.plan, device=str(self.device),
                        sections=list(self.sections.values()), records=dict(self.run.manifest["stages"]),
                        resumed=resumed, gates=self.gates, renders=list(self.renders),
                        budgets=self._report_budgets(), accuracy_slack=self.config.report.accuracy_slack)

    def teacher(self) -> nn.Module:
        """The trained teacher (frozen, eval mode), loaded once."""
        if self._teacher is None:
            from edgekd.models.artifact import load_model

            path = self.model_dirs().get("teacher")
            if path is None:
                raise ModelError("no trained teacher in this run", hint="give teacher.checkpoint or teacher.train")
            self._teacher, _ = load_model(path)
            for p in self._teacher.parameters():
                p.requires_grad_(False)
        return self._teacher

    def teacher_latency(self, collective: bool = True) -> dict[str, LatencyEstimate]:
        """The teacher architecture's latency on each target's best runtime (measured on host,
        predicted elsewhere): what relative budgets divide. Measured once per run (rank 0,
        broadcast) and kept in ``teacher_latency.json`` so every stage and ``--resume`` divide
        the same number. A collective call under torchrun: every rank must reach it (the stages
        that do: search, distill, prune)."""
        if self._teacher_latency is not None:
            return self._teacher_latency
        import json

        from edgekd.core import dist
        from edgekd.core.rundir import atomic_write_json
        from edgekd.models.build import build_model

        t = self.config.teacher
        key = {"model": t.model, "kwargs": t.kwargs, "input_size": self.data.image_size,
               "classes": self.data.num_classes, "targets": [p.model_dump(mode="json") for p in self.targets],
               "threads": self.config.bench.threads}
        path = self.run.root / "teacher_latency.json"
        found = None
        if dist.world().main:
            try:
                saved = json.loads(path.read_text())
                if saved.get("key") == json.loads(json.dumps(key, default=str)):
                    found = saved["latency"]
            except (OSError, ValueError, KeyError):
                found = None
            if found is None:
                torch.manual_seed(self.config.seed)
                model = build_model(t.model, self.data.num_classes, t.kwargs, what="teacher.model")
                found = {p.name: best_latency(model, p, self.data.image_size, threads=self.config.bench.threads).__dict__
                         for p in self.targets}
                atomic_write_json(path, {"key": key, "latency": found})
        if collective:  # every rank is in this call (search, distill, prune); the report is rank 0's alone
            found = dist.broadcast(found)
        self._teacher_latency = {name: LatencyEstimate(**e) for name, e in found.items()}
        return self._teacher_latency

    def budgets(self, speedup: float | dict[str, float] | None, latency_ms: float | None, what: str,
                collective: bool = True) -> dict[str, TargetBudget]:
        """Per target, the latency limit (absolute, else the teacher's / ``speedup``, else the profile's).
        ``speedup`` may be per target (``{name or alias: k, default: k}``)."""
        ref = self.teacher_latency(collective) if speedup is not None and latency_ms is None else {}
        return {p.name: teacher_budget(p, ref.get(p.name), speedup=speedup_for(speedup, p), latency_ms=latency_ms,
                                       what=what)
                for p in self.targets}

    def _report_budgets(self) -> dict[str, dict[str, Any]]:
        """The run's budgets for the report: rank 0 alone builds reports (the other ranks are not in a
        collective call here, so measuring or broadcasting the teacher's latency would hang them)."""
        from edgekd.core import dist

        if not dist.world().main:
            return {}
        return {n: b.as_dict() for n, b in self.run_budgets(collective=False).items()}

    def run_budgets(self, collective: bool = True) -> dict[str, TargetBudget]:
        """The run's budget per target (search.constraints): what search binds to and the report judges by."""
        c = self.config.search.constraints
        return self.budgets(c.speedup, c.latency_ms, "search.constraints", collective)


# search.constraints.speedup's default, also for targets a per-target mapping leaves out
DEFAULT_SPEEDUP: float = ConstraintsConfig.model_fields["speedup"].default


def speedup_for(speedup: float | dict[str, float] | None, profile: Profile) -> float | None:
    """The k of one target: a number for all, or the mapping's entry for its name or an alias,
    else its ``default`` entry, else the number's default (4)."""
    if not isinstance(speedup, dict):
        return speedup
    for key in (profile.name, *profile.aliases):
        if key in speedup:
            return speedup[key]
    return speedup.get("default", DEFAULT_SPEEDUP)


ALPHA_AFTER_PLAIN_WON = 0.5  # the labels weigh as much as the teacher


def kd_adapted(ctx: RunContext, train: TrainConfig) -> tuple[TrainConfig, str | None]:
    """A later fine-tune (prune, QAT) after distill shipped the student trained without the
    teacher: KD did not pay there (the student outgrew its teacher), so a default KD loss gets
    α 0.5 instead of 0.9. A loss the user wrote is kept. Returns the config and what changed.

    Why 0.5 and not labels alone: the stages still distil (the soft targets help QAT recover
    from rounding), but the teacher no longer dominates a student better than itself. On the
    digits run whose plain student beat KD (99.16 vs 98.61%), the Taylor-pruned fine-tune
    reached 98.33% with α 0.5 or labels alone against 97.49% with α 0.9 (RESULTS §12)."""
    distill = ctx.results.get("distill")
    heavy = [t.name == "kl" and t.params.alpha > ALPHA_AFTER_PLAIN_WON for t in train.loss]  # terms to lighten
    if distill is None or distill.metrics.get("shipped") != "plain" or "loss" in train.model_fields_set \
            or not any(heavy):
        return train, None
    loss = [LossTerm(name=t.name, weight=t.weight, **{**t.params.model_dump(), "alpha": ALPHA_AFTER_PLAIN_WON})
            if h else t for t, h in zip(train.loss, heavy, strict=True)]
    was = next(t.params.alpha for t, h in zip(train.loss, heavy, strict=True) if h)
    why = (f"KD did not pay in distill (the student trained without the teacher shipped): the KD weight α is "
           f"{ALPHA_AFTER_PLAIN_WON} instead of {was} (set the loss to keep it)")
    return train.model_copy(update={"loss": loss}), why


def training_configs(config: Config) -> dict[str, Any]:
    """Every training stage's settings, by config key."""
    out = {"distill": config.distill, "prune.finetune": config.prune.finetune, "quantize.train": config.quantize.train}
    return {"teacher.train": config.teacher.train, **out} if config.teacher.train else out


def input_sources(data: Data) -> str:
    """Where the contract came from, compactly: ``size: config; mean, std: timm pretrained_cfg of resnet18``."""
    by_source: dict[str, list[str]] = {}
    for k, src in data.preprocess.sources.items():
        by_source.setdefault(src, []).append(k)
    return "; ".join(f"{', '.join(ks)}: {src}" for src, ks in by_source.items())


def warn_if_larger_than_teacher(ctx: RunContext, stage: str, student_params: int, teacher_params: int | None,
                                key: str) -> None:
    """A student with more parameters than its teacher compresses nothing: say so before time is spent on it."""
    if teacher_params and student_params > teacher_params:
        ctx.reporter.warn(stage, f"the student ({student_params / 1e6:.3g}M params) is larger than the teacher "
                                 f"({teacher_params / 1e6:.3g}M): it will not be faster; check {key}")


class Stage:
    name: ClassVar[str]

    def settings(self, ctx: RunContext) -> Any:
        """Everything this stage's output depends on, besides earlier stages' artifacts."""
        section = getattr(ctx.config, self.name, None)
        return section.model_dump(mode="json") if section is not None else {}

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        raise NotImplementedError

    def section(self, result: StageResult) -> Section:
        """This stage's part of the report, from its metrics (also when restored by --resume)."""
        return Section(stage=self.name)
