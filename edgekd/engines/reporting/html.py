"""report.html: the answer first (what to ship on each target), then one accuracy-vs-latency
panel per target, where the time went, pruning, distillation, and every table after that.

Self-contained (inline CSS, PNGs as data URIs, no script, nothing fetched) so it can be
mailed or archived; laid out for a 1400 px window (tables wrap instead of widening the page).
The tables' text is written once for Markdown and HTML alike: ``inline`` turns its
backticks and asterisks into HTML instead of leaking them.
"""

from __future__ import annotations

import html
import re
from typing import Any

from edgekd.engines.reporting.layout import answer_sections, detail_sections, evidence_sections
from edgekd.engines.reporting.outcome import effect_names
from edgekd.engines.reporting.plots import (
    accuracy_latency_panels,
    class_change_plot,
    pruning_plot,
    stage_times_plot,
    training_plot,
)
from edgekd.engines.reporting.points import Point, comparable, target_kinds
from edgekd.engines.reporting.schema import Report
from edgekd.engines.reporting.search_plots import search_panels
from edgekd.engines.reporting.tables import Section, front_line

CSS = """*{box-sizing:border-box}body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;
padding:24px 28px;max-width:1400px;color:#1d1d1f;line-height:1.45}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}.meta{color:#555;margin:0 0 6px}nav{font-size:14px;margin:8px 0 0}
nav a{margin-right:14px;color:#0b57d0;text-decoration:none}
.tbl{max-width:100%;overflow-x:auto}table{border-collapse:collapse;margin:8px 0 10px;font-size:13.5px;max-width:100%}
th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f3f4f6}tr:nth-child(even) td{background:#fafafa}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;background:#f1f3f4;padding:0 3px;border-radius:3px}
.answer td:first-child{font-weight:600}.answer{font-size:14.5px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:18px 24px}
figure{margin:0}figure img{width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#444;margin-top:4px}p{margin:6px 0}.note{color:#555;font-size:14px}
details{margin-top:10px}summary{cursor:pointer;font-weight:600;font-size:17px;margin:14px 0}"""

_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")


def inline(text: str) -> str:
    """Escaped HTML of one line of the tables' Markdown-ish text: `code`, **strong**, *em*."""
    out = []
    for i, part in enumerate(_CODE.split(text)):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            part = _STRONG.sub(r"<strong>\1</strong>", html.escape(part, quote=False))
            out.append(_EM.sub(r"<em>\1</em>", part))
    return "".join(out)


def _table(s: Section, cls: str = "") -> list[str]:
    out = []
    if s.headers and s.rows:
        out.append(f"<div class='tbl'><table class='{cls}'><tr>" + "".join(f"<th>{inline(h)}</th>" for h in s.headers)
                   + "</tr>")
        out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in s.rows]
        out.append("</table></div>")
    out += [f"<p>{inline(line)}</p>" for line in s.lines]
    return out


def _section(s: Section, cls: str = "", anchor: str = "") -> list[str]:
    a = f" id='{anchor}'" if anchor else ""
    return [f"<h2{a}>{inline(s.title)}</h2>", *_table(s, cls)]


def _img(b64: str, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'>"


def panel_caption(points: list[Point], budget: float | None) -> str:
    """What the panel's points are: which runtime each accuracy comes from, on which images."""
    sources: dict[str, list[str]] = {}
    for p in points:
        if p.accuracy is not None:
            sources.setdefault(p.source, [])
            if p.series not in sources[p.source]:
                sources[p.source].append(p.series)
    acc = "; ".join(f"{src} ({', '.join(series)})" for src, series in sources.items())
    subsets = sorted({(p.samples, p.of) for p in points if p.subset})
    images = ("all validation images" if not subsets else
              "; ".join(f"{n} of {of} validation images for some files, compared with PyTorch on the same "
                        f"{n}" for n, of in subsets))
    kind = comparable(points)[0].kind if points else "measured"
    text = (f"Filled: measured; hollow: predicted. Accuracy of each point in its own runtime, on {images}: "
            f"{acc}. Dotted: the Pareto front of the {kind} points (none faster and more accurate at once).")
    if budget:
        text += f" Dashed: the target's latency budget, {budget:.3g} ms."
    return inline(text)


def _panels(r: Report) -> list[str]:
    budgets = {t["name"]: t.get("latency_budget_ms") for t in r.targets}
    panels = accuracy_latency_panels(r)
    if not panels:
        return []
    out = ["<h2 id='tradeoff'>Accuracy vs latency, per target</h2><div class='grid'>"]
    for target, img, points in panels:
        out.append(f"<figure>{_img(img, f'accuracy vs latency on {target}')}"
                   f"<figcaption>{panel_caption(points, budgets.get(target))}</figcaption></figure>")
    out.append("</div>")
    return out


def _time_and_pruning(r: Report, evidence: list[Section]) -> list[str]:
    out = []
    img = stage_times_plot(r)
    if img:
        out += ["<h2 id='time'>Where the time went</h2>", _img(img, "seconds per stage").replace(
            "<img", "<img style='max-width:720px;width:100%'"),
                "<p class='note'>Wall-clock seconds per stage (the report stage itself is still running when "
                "this page is written). Hatched: a stage restored from an earlier run; its time is that run's.</p>"]
    prune = next((s for s in evidence if s.title == "Pruning steps"), None)
    if prune is not None:
        out.append("<h2 id='pruning'>Pruning steps</h2><div class='grid'>")
        img = pruning_plot(r)
        out.append(f"<figure>{_img(img, 'accuracy vs MACs per pruning step')}</figure>" if img else "")
        out += ["<div>", *_table(prune), "<p class='note'>Accuracy in PyTorch on the validation images, "
                "right after each cut and after its distillation fine-tune.</p></div></div>"]
    return out


def _distillation(r: Report, evidence: list[Section]) -> list[str]:
    out = []
    for s in evidence:
        if s.title.startswith("Distillation"):
            out += _section(s, anchor="distillation")
        elif s.title.startswith("Beyond top-1"):
            out.append(f"<h3>{inline(s.title)}</h3>")
            out += _table(s)
            shown = effect_names(r)
            figs = [(o, class_change_plot(r.distillation_effects, o, shown)) for o in ("baseline", "teacher")]
            figs = [(o, img) for o, img in figs if img]
            if figs:
                out.append("<div class='grid'>" + "".join(
                    f"<figure>{_img(img, f'per-class change vs {shown.get(o, o)}')}</figure>" for o, img in figs)
                    + "</div>")
        elif s.title not in ("Pruning steps",):
            out += _section(s)
    return out


def _search(r: Report) -> list[str]:
    """The search's score-vs-latency panel per target, each captioned with its front line."""
    panels = search_panels(r)
    if not panels:
        return []
    out = ["<h2 id='search'>Search: DisWOT score vs latency, per target</h2><div class='grid'>"]
    for target, img in panels:
        out.append(f"<figure>{_img(img, f'search score vs latency on {target}')}<figcaption>"
                   f"{inline(front_line(r.search, target))} Red: the Pareto front (no candidate both scores higher "
                   f"and runs faster); the pick is the best score under the budget. The teacher's score is "
                   f"against itself, so it is the top of the scale.</figcaption></figure>")
    out.append("</div>")
    return out


def _head(r: Report) -> list[str]:
    e = html.escape
    targets = target_kinds(r)
    d = r.data
    links = [("deploy", "What to deploy"), ("tradeoff", "Accuracy vs latency"), ("time", "Time"),
             ("pruning", "Pruning"), ("distillation", "Distillation"), ("search", "Search"), ("details", "All tables")]
    return [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>edgekd report: {e(r.run_name)}</title><style>{CSS}</style></head><body>",
            f"<h1>edgekd report: {e(r.run_name)}</h1>",
            f"<p class='meta'>edgekd {e(r.edgekd_version)} · {e(r.created)} · data: {e(str(d.get('source')))} "
            f"({d.get('classes')} classes, {d.get('train')} train / {d.get('val')} validation images, "
            f"{d.get('image_size')} px) · targets: {e(targets)}</p>",
            f"<p class='meta'><code>{e(r.command)}</code></p>" if r.command else "",
            "<nav>" + "".join(f"<a href='#{a}'>{t}</a>" for a, t in links) + "</nav>"]


def render_html(r: Report, histories: dict[str, list[dict[str, Any]]] | None = None) -> str:
    out = _head(r)
    for s in answer_sections(r):
        out += _section(s, cls="answer", anchor="deploy")
    out += _panels(r)
    evidence = evidence_sections(r)
    out += _time_and_pruning(r, evidence)
    out += _distillation(r, evidence)
    img = training_plot(histories or {})
    if img:
        out += ["<h2 id='training'>Training curves</h2>",
                _img(img, "validation accuracy per epoch").replace("<img", "<img style='max-width:720px;width:100%'")]
    out += _search(r)
    out.append("<h2 id='details'>All tables</h2>")
    for s in detail_sections(r):
        out += [f"<h3>{inline(s.title)}</h3>", *_table(s)]
    out.append("</body></html>")
    return "\n".join(out)
