"""The order of the report's sections, shared by report.md and report.html: the answer
(what to deploy where) first, then the evidence, then how the run was made."""

from __future__ import annotations

from edgekd.engines.reporting.outcome import (
    distillation_section,
    effects_section,
    pruning_section,
    recommendation_section,
    sources_section,
)
from edgekd.engines.reporting.schema import Report
from edgekd.engines.reporting.tables import (
    Section,
    comparison_section,
    deployment_section,
    device_build_section,
    environment_section,
    input_section,
    latency_section,
    models_section,
    search_section,
    speedup_section,
    stages_section,
)


def answer_sections(r: Report) -> list[Section]:
    """What to deploy on each target (the top of the report)."""
    return [recommendation_section(r)] if r.deployment else []


def evidence_sections(r: Report) -> list[Section]:
    """What the compression did: pruning, distillation (also when not measured), calibration."""
    out = []
    if r.pruning.get("steps") or r.pruning.get("stopped"):
        out.append(pruning_section(r))
    if r.comparisons.get("student_sources"):
        out.append(sources_section(r))
    if "distill" in r.stages:
        out.append(distillation_section(r))
    if r.distillation_effects:
        out.append(effects_section(r))
    comp = comparison_section(r)
    if comp.lines:
        out.append(comp)
    return out


def detail_sections(r: Report) -> list[Section]:
    """Every number behind the answer: models, input, latency rows, search, stages, environment."""
    out = [models_section(r)]
    if r.data.get("preprocess"):
        out.append(input_section(r))
    if r.latency:
        out += [latency_section(r), speedup_section(r), deployment_section(r)]
    if any(e.get("status") == "deferred" for e in r.exports):
        out.append(device_build_section(r))
    if r.search:
        out.append(search_section(r))
    return out + [stages_section(r), environment_section(r)]


def sections(r: Report) -> list[Section]:
    """All sections in reading order (report.md)."""
    return answer_sections(r) + evidence_sections(r) + detail_sections(r)
