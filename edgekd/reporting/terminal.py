"""The table printed at the end of a run, like `yolo benchmark`'s: one row per artifact and
where it was timed. Status: ✅ exported and validated, ❎ exported but failed validation,
⏳ to be built on the device (command in the report)."""

from __future__ import annotations

from rich.table import Table

from edgekd.reporting.schema import Report

STATUS = {"ok": "✅", "failed": "❎", "deferred": "⏳"}


def summary_table(r: Report) -> Table:
    t = Table(title=f"edgekd · {r.run_name}", title_justify="left")
    for col in ("Model", "Format", "Precision", "Status", "Size (MB)", "Accuracy", "Latency (ms)", "Kind",
                "Target / backend"):
        t.add_column(col, justify="right" if col in ("Size (MB)", "Accuracy", "Latency (ms)") else "left")
    for x in sorted(r.latency, key=lambda x: (x["target"] != "host", x["target"], x["model"], x["median_ms"])):
        m = r.model(x["model"])
        key = f"{x['format']} {x['precision']}"
        acc = None
        if m is not None:
            acc = next((v for k, v in m.runtime_accuracy.items() if k.startswith(key)), m.accuracy)
        if x.get("validation"):
            acc = x["validation"]["accuracy"]
        size = m.size_mb.get(key) if m else None
        t.add_row(x["model"], x["format"], x["precision"], "✅", f"{size:.2f}" if size else "–",
                  f"{acc:.2f}%" if acc is not None else "–", f"{x['median_ms']:.3f}", x["kind"],
                  f"{x['target']} / {x['backend']}")
    for e in r.exports:
        if e["status"] != "ok":
            t.add_row(e["model"], e["format"], e["precision"], STATUS.get(e["status"], e["status"]), "–",
                      f"{e['parity']['accuracy']:.2f}%" if e.get("parity") else "–", "–", "–",
                      "build on device" if e["status"] == "deferred" else "validation failed")
    if not r.latency:
        for m in r.models:
            t.add_row(m.label, "torch", "fp32", "✅", "–", f"{m.accuracy:.2f}%" if m.accuracy is not None else "–",
                      "–", "–", "–")
    return t


def search_table(r: Report) -> Table:
    """The ranked candidates of a search: score components, size, latency, feasibility."""
    from edgekd.reporting.tables import search_section

    sec = search_section(r)
    t = Table(title=f"DisWOT search · {r.search.get('space')} · top {len(sec.rows)}", title_justify="left")
    for h in sec.headers:
        t.add_column(h, overflow="fold")
    for row in sec.rows:
        t.add_row(*row)
    return t
