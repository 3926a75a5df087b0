"""report.md: the sections as GitHub-flavoured Markdown tables."""

from __future__ import annotations

from edgekd.reporting.layout import sections
from edgekd.reporting.schema import Report


def _esc(cell: str) -> str:
    return cell.replace("|", "\\|")


def render_markdown(r: Report) -> str:
    out = [f"# edgekd report: {r.run_name}", ""]
    if r.command:
        out += [f"Command: `{r.command}`", ""]
    targets = ", ".join(f"{t['name']} ({'measured' if t['measured_here'] else 'predicted'})" for t in r.targets)
    out += [f"edgekd {r.edgekd_version} · {r.created} · data: {r.data.get('source')} "
            f"({r.data.get('classes')} classes, {r.data.get('train')} train / {r.data.get('val')} val, "
            f"{r.data.get('image_size')} px) · targets: {targets}", ""]
    for s in sections(r):
        out += [f"## {s.title}", ""]
        if s.headers:
            out.append("| " + " | ".join(s.headers) + " |")
            out.append("|" + "|".join("---" for _ in s.headers) + "|")
            out += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in s.rows]
            out.append("")
        out += [f"- {line}" if not line.startswith("Every") else line for line in s.lines]
        if s.lines:
            out.append("")
    for n in r.notes:
        out.append(f"> {n}")
    return "\n".join(out).rstrip() + "\n"
