"""Report: report.json (schema_version'd, for machines), report.md and report.html (for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from edgekd.core.rundir import atomic_write_text, sha256_tree
from edgekd.engines.reporting.build import build_report, training_histories
from edgekd.engines.reporting.html import render_html
from edgekd.engines.reporting.markdown import render_markdown
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext
from edgekd.stages.outputs import ReportOutput


class ReportStage(Stage):
    name = "report"

    def settings(self, ctx: RunContext) -> Any:
        imports = ctx.run.root / "imports"
        settings = {"report": ctx.config.report.model_dump(mode="json"),  # the command is cosmetic: not an input
                    "imports": sha256_tree(imports) if imports.exists() else None}
        if ctx.gates.active:  # a new gate re-checks (and re-writes) a resumed run's report
            settings["gates"] = ctx.gates.model_dump(mode="json")
        return settings

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        facts = ctx.facts()
        report = build_report(facts)
        artifacts: dict[str, Path] = {}
        fmts = ctx.config.report.formats
        if "json" in fmts:
            atomic_write_text(out / "report.json", report.model_dump_json(indent=2))
            artifacts["json"] = out / "report.json"
        if "md" in fmts:
            atomic_write_text(out / "report.md", render_markdown(report))
            artifacts["md"] = out / "report.md"
        if "html" in fmts:
            atomic_write_text(out / "report.html", render_html(report, training_histories(facts.sections)))
            artifacts["html"] = out / "report.html"
        ctx.reporter.line(f"[green]report[/]: {escape(', '.join(str(p) for p in artifacts.values()))}")
        return StageResult(ReportOutput(files={k: str(v) for k, v in artifacts.items()}), artifacts)
