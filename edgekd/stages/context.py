"""The run context every stage reads from: config, run folder, targets, the deployment plan,
the data (loaded once under the teacher's input contract), the trained teacher, the run's
budgets (resolved once) and the earlier stages' typed outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from rich.markup import escape
from torch import nn

from edgekd.core import dist
from edgekd.core.budgets import RunBudgets
from edgekd.core.config import Config
from edgekd.core.errors import ConfigError, ModelError
from edgekd.core.profiles import Profile
from edgekd.core.progress import Reporter
from edgekd.core.rundir import RunDir
from edgekd.engines.budgets.resolve import teacher_architecture
from edgekd.engines.budgets.store import run_budgets, settled_budgets
from edgekd.engines.data.bundle import Data
from edgekd.engines.data.input_contract import input_sources, load_run_data
from edgekd.engines.models.artifact import ModelSpec, load_model, save_model
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import load_weights
from edgekd.engines.models.families import family_of
from edgekd.engines.models.stats import count_params
from edgekd.engines.plan.deployment import RunPlan, plan_run
from edgekd.engines.reporting.gates import GateSpec
from edgekd.engines.reporting.sections import RunFacts, Section
from edgekd.engines.search.families import search_space
from edgekd.stages.outputs import DistillOutput, StageOutput, StageResult

OutputT = TypeVar("OutputT", bound=StageOutput)
MODEL_ORDER = ("teacher", "teacher_pruned", "student", "pruned", "quantized")
# Files that compete in the report but are not in the compression chain: prune and quantize
# never take them (the teacher, pruned, when it serves only some targets: stages/distill/stage.py).
SIDE_MODELS = ("teacher", "teacher_pruned")


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
        self._settled: RunBudgets | None = None  # the budgets in force after the search, read once
        self._settled_from: Path | None = None

    @property
    def data(self) -> Data:
        """The data set on the CPU, loaded once per run under the teacher's input contract."""
        if self._data is None:
            self._data, self.data_notes = load_run_data(self.config)
            d = self._data
            if d.in_memory:
                crop = [k for k, t in self.config.training_sections().items() if t.augment.crop_scale is not None]
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
            path = self.model_dirs().get("teacher")
            if path is None:
                raise ModelError("no trained teacher in this run", hint="give teacher.checkpoint or teacher.train")
            self._teacher, _ = load_model(path)
            for p in self._teacher.parameters():
                p.requires_grad_(False)
        return self._teacher

    def teacher_architecture(self) -> nn.Module:
        """The teacher's architecture at random init (seeded): what search scores against and budgets time."""
        return teacher_architecture(self.config, self.data.num_classes)

    def search_space(self):  # noqa: ANN201 - a SearchSpace
        """The space the run searches (search.space, else the one the teacher's family calls for)."""
        return search_space(self.config.search, self.teacher_architecture(), self.data.image_size)

    def budgets(self, collective: bool = True, probe: bool = True) -> RunBudgets:
        """The run's one budget object: after the search, the budgets it settled; before, the
        ones resolved from the config at start. ``collective``: every torchrun rank is in this call."""
        search = self.results.get("search")
        path = search.artifacts.get("budgets") if search is not None else None
        if path is None or path != self._settled_from:  # the search's file is read once, not on every call
            self._settled = settled_budgets(path, lambda: self.resolved_budgets(collective, probe))
            self._settled_from = path if path is not None and Path(path).exists() else None
        assert self._settled is not None
        return self._settled

    def resolved_budgets(self, collective: bool = True, probe: bool = True) -> RunBudgets:
        """Resolved once per run from the config alone, kept in the run folder (engines/budgets/store.py)."""
        if self._budgets is None:
            self._budgets = run_budgets(self.config, self.targets, self.run.root, input_size=self.data.image_size,
                                        num_classes=self.data.num_classes, round_to=self.plan.channel_rounding,
                                        space=self.search_space, probe=probe, collective=collective)
        return self._budgets

    def output(self, kind: type[OutputT]) -> OutputT | None:
        """An earlier stage's typed output (``ctx.output(TeacherOutput)``), None when it did not run."""
        res = self.results.get(kind.stage)
        return res.output if res is not None and isinstance(res.output, kind) else None

    def _report_budgets(self) -> dict[str, dict[str, Any]]:
        """The run's budgets for the report: rank 0 alone builds reports (the other ranks are not in a
        collective call here, so measuring or broadcasting the teacher's latency would hang them)."""
        if not dist.world().main:
            return {}
        return {n: {**b.as_dict(), "summary": b.summary()}
                for n, b in self.budgets(collective=False, probe=False).items()}


def shipped_by_distill(ctx: RunContext) -> str | None:
    """What distill shipped (``kd`` or ``plain``), None when this run has no distill stage."""
    out = ctx.output(DistillOutput)
    return out.shipped if out is not None else None


def warn_if_larger_than_teacher(ctx: RunContext, stage: str, student: nn.Module, teacher_params: int | None,
                                key: str) -> None:
    """A student with more parameters than a teacher of its own family compresses nothing: said before
    time is spent on it. Across families parameters are not latency (a ResNet with 3x a ViT's
    parameters ran 5x faster than it), so nothing is said there."""
    n = count_params(student)
    same = family_of(student) == family_of(ctx.teacher_architecture())
    if teacher_params and n > teacher_params and same:
        ctx.reporter.warn(stage, f"the student ({n / 1e6:.3g}M params) is larger than the teacher "
                                 f"({teacher_params / 1e6:.3g}M) of its family: it will not be faster; check {key}")
