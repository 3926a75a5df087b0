"""report.md: the sections as GitHub-flavoured Markdown tables."""

from __future__ import annotations

from edgekd.engines.reporting.layout import sections
from edgekd.engines.reporting.points import target_kinds
from edgekd.engines.reporting.schema import Report
from edgekd.engines.reporting.tables import Section


def _esc(cell: str) -> str:
    return cell.replace("|", "\\|")


def readable_names(r: Report, secs: list[Section]) -> list[Section]:
    """The Models table with each architecture's readable name (``mobilenetv3 w0.5 d0.75``) instead of
    the builder path it is rebuilt from (which report.json keeps in ``models[].model``)."""
    for sec in secs:
        if sec.title == "Models" and "Architecture" in sec.headers:
            col = sec.headers.index("Architecture")
            for row, m in zip(sec.rows, r.models, strict=False):
                if m.name and row[col] == m.model:
                    row[col] = m.name
    return secs


def _gates_and_renders(r: Report) -> list[str]:
    out = []
    if r.gates:
        out += ["## CI gates", "", "| Gate | Target | Model | Value | Threshold | Result | Detail |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {g.name} | {g.target or '–'} | {g.model or '–'} | {g.value if g.value is not None else '–'} | "
                f"{g.threshold if g.threshold is not None else '–'} | {'passed' if g.passed else '**failed**'} | "
                f"{_esc(g.detail)} |" for g in r.gates]
        out.append("")
    if r.renders:
        out += [f"Re-rendered {x['at']}: `{x['command']}`" for x in r.renders] + [""]
    return out


def render_markdown(r: Report) -> str:
    out = [f"# edgekd report: {r.run_name}", ""]
    if r.command:
        out += [f"Command: `{r.command}`", ""]
    targets = target_kinds(r)
    out += [f"edgekd {r.edgekd_version} · {r.created} · data: {r.data.get('source')} "
            f"({r.data.get('classes')} classes, {r.data.get('train')} train / {r.data.get('val')} val, "
            f"{r.data.get('image_size')} px) · targets: {targets}", ""]
    for s in readable_names(r, sections(r)):
        out += [f"## {s.title}", ""]
        if s.headers:
            out.append("| " + " | ".join(s.headers) + " |")
            out.append("|" + "|".join("---" for _ in s.headers) + "|")
            out += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in s.rows]
            out.append("")
        out += [f"- {line}" if not line.startswith("Every") else line for line in s.lines]
        if s.lines:
            out.append("")
    out += _gates_and_renders(r)
    for n in r.notes:
        out.append(f"> {n}")
    return "\n".join(out).rstrip() + "\n"
