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

from edgekd.budgets import RunBudgets
from edgekd.core.config import Config, LossTerm, TrainConfig
from edgekd.core.errors import ConfigError, ModelError
from edgekd.core.profiles import Profile
from edgekd.core.progress import Reporter
from edgekd.core.rundir import RunDir
from edgekd.data.bundle import Data
from edgekd.models.input_contract import load_run_data
from edgekd.plan import RunPlan, plan_run
from edgekd.reporting.gates import GateSpec
from edgekd.reporting.sections import RunFacts, Section

MODEL_ORDER = ("teacher", "teacher_pruned", "student", "pruned", "quantized")
# Files that compete in the report but are not in the compression chain: prune and quantize
# never take them (the teacher, pruned, when it serves only some targets: distill/stage.py).
SIDE_MODELS = ("teacher", "teacher_pruned")


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
        self._budgets: RunBudgets | None = None

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
        models = {k: v for k, v in self.model_dirs().items() if k not in SIDE_MODELS}
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
        models = {k: v for k, v in self.model_dirs().items() if k not in SIDE_MODELS}
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
                        budgets=self._report_budgets(), accuracy_slack=self.config.report.accuracy_slack,
                        max_accuracy_drop=self.config.report.max_accuracy_drop)

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

    def teacher_architecture(self) -> nn.Module:
        """The teacher's architecture at random init (seeded): what search scores against and budgets time."""
        from edgekd.budgets.resolve import teacher_architecture

        return teacher_architecture(self.config, self.data.num_classes)

    def search_space(self):  # noqa: ANN201 - a SearchSpace
        """The space the run searches (search.space, else the one the teacher's family calls for)."""
        from edgekd.models.families import search_space

        return search_space(self.config.search, self.teacher_architecture())

    def budgets(self, collective: bool = True, probe: bool = True) -> RunBudgets:
        """The run's latency budgets: after the search, the ones it settled (its ``budgets`` file);
        before, the ones resolved from the config at start (``budgets.json``, resolved once and
        reused by ``--resume``). ``collective``: every torchrun rank is in this call."""
        search = self.results.get("search")
        path = search.artifacts.get("budgets") if search is not None else None
        if path is not None and Path(path).exists():
            import json

            return RunBudgets.from_dict(json.loads(Path(path).read_text()))
        return self.resolved_budgets(collective, probe)

    def resolved_budgets(self, collective: bool = True, probe: bool = True) -> RunBudgets:
        """Resolved once per run from the config alone (budgets/resolve.py): rank 0 resolves, or
        reads ``budgets.json`` when its key matches, and broadcasts; a wall out of reach raises on
        every rank alike. ``probe``: time what the search space reaches and check the walls (a
        re-rendered report of a run that never resolved its budgets only needs the teacher's latency)."""
        if self._budgets is not None:
            return self._budgets
        import json

        from edgekd.budgets import resolve_budgets
        from edgekd.core import dist
        from edgekd.core.errors import SearchError
        from edgekd.core.rundir import atomic_write_json

        c = self.config
        key = json.loads(json.dumps({
            "teacher": {"model": c.teacher.model, "kwargs": c.teacher.kwargs}, "input_size": self.data.image_size,
            "classes": self.data.num_classes, "targets": [p.model_dump(mode="json") for p in self.targets],
            "threads": c.bench.threads, "constraints": c.search.constraints.model_dump(mode="json"),
            "written": sorted(c.search.constraints.model_fields_set), "seed": c.seed,
            "space": c.search.space.spec() if c.search.space else None, "stages": c.stages,
            "teacher_pruned": c.distill.teacher_pruned, "rounding": self.plan.channel_rounding,
            "probed": probe and "search" in c.stages}, default=str))
        path = self.run.root / "budgets.json"
        found: dict[str, Any] | None = None
        if dist.world().main:
            try:
                saved = json.loads(path.read_text())
                found = saved["budgets"] if saved.get("key") == key else None
            except (OSError, ValueError, KeyError):
                found = None
            if found is None:
                try:
                    space = self.search_space() if probe and "search" in c.stages else None
                    found = resolve_budgets(c, self.targets, input_size=self.data.image_size,
                                            num_classes=self.data.num_classes, round_to=self.plan.channel_rounding,
                                            space=space).as_dict()
                    atomic_write_json(path, {"key": key, "budgets": found})
                except SearchError as exc:
                    found = {"error": [exc.message, exc.hint]}
        if collective:
            found = dist.broadcast(found)
        assert found is not None
        if "error" in found:
            raise SearchError(found["error"][0], hint=found["error"][1])
        self._budgets = RunBudgets.from_dict(found)
        return self._budgets

    def _report_budgets(self) -> dict[str, dict[str, Any]]:
        """The run's budgets for the report: rank 0 alone builds reports (the other ranks are not in a
        collective call here, so measuring or broadcasting the teacher's latency would hang them)."""
        from edgekd.core import dist

        if not dist.world().main:
            return {}
        return {n: {**b.as_dict(), "summary": b.summary()}
                for n, b in self.budgets(collective=False, probe=False).items()}


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
