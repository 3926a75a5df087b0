"""report.html: the same sections as HTML, plus plots (accuracy vs latency, training curves)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from edgekd.reporting.schema import Report
from edgekd.reporting.tables import sections

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}h1{font-size:24px}h2{font-size:19px;margin-top:1.6em}.meta{color:#555}img{max-width:100%}"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def accuracy_latency_plot(r: Report) -> str | None:
    """Scatter of accuracy vs measured latency, one point per model and backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = []
    for x in r.latency:
        m = r.model(x["model"])
        if m is not None and m.accuracy is not None:
            pts.append((x["median_ms"], m.accuracy, f"{x['model']} {x['backend']} {x['precision']}", x["kind"]))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for ms, acc, label, kind in pts:
        ax.scatter(ms, acc, marker="o" if kind == "measured" else "x")
        ax.annotate(label, (ms, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("latency, median ms (log; o measured, x predicted)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def training_plot(histories: dict[str, list[dict[str, Any]]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not histories:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, h in histories.items():
        ax.plot([e["epoch"] for e in h], [e["val_accuracy"] for e in h], marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def render_html(r: Report, histories: dict[str, list[dict[str, Any]]] | None = None) -> str:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgekd report: {e(r.run_name)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>edgekd report: {e(r.run_name)}</h1>"]
    out.append(f"<p class='meta'>edgekd {e(r.edgekd_version)} · {e(r.created)} · <code>{e(r.command)}</code></p>")
    for s in sections(r):
        out.append(f"<h2>{e(s.title)}</h2>")
        if s.headers:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in s.headers) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in s.rows]
            out.append("</table>")
        out += [f"<p>{e(line).replace('**', '')}</p>" for line in s.lines]
    for title, img in (("Accuracy vs latency", accuracy_latency_plot(r)), ("Training curves", training_plot(histories or {}))):
        if img:
            out.append(f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{img}'>")
    out.append("</body></html>")
    return "\n".join(out)
