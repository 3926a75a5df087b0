"""The stage interface.

Every stage has the same shape (scikit-learn's uniform-estimator habit): a ``name``, a
``settings(ctx)`` that says what its result depends on besides earlier stages' outputs,
and ``run(ctx, out) -> StageResult`` that writes only into its own folder ``out``. A stage
never reaches into another stage's internals: it reads the typed outputs and artifacts the
context holds (``stages/context.py``, ``stages/outputs.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from edgekd.engines.reporting.sections import Section
from edgekd.stages.context import RunContext
from edgekd.stages.outputs import StageResult

__all__ = ["RunContext", "Stage", "StageResult"]


class Stage:
    name: ClassVar[str]

    def settings(self, ctx: RunContext) -> Any:
        """Everything this stage's output depends on, besides earlier stages' artifacts."""
        section = getattr(ctx.config, self.name, None)
        return section.model_dump(mode="json") if section is not None else {}

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        raise NotImplementedError

    def section(self, result: StageResult) -> Section:
        """This stage's part of the report, from its output (also when restored by --resume)."""
        return Section(stage=self.name)
