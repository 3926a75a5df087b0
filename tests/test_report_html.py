"""report.html people read: the deployment choice first, one accuracy-vs-latency panel per target
with each file's accuracy in its own runtime, no Markdown leaking, and a page that renders in a
real browser (headless Chromium) at 1400 px without overflowing."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgekd.engines.reporting.deploy import recommend
from edgekd.engines.reporting.html import inline, render_html
from edgekd.engines.reporting.markdown import render_markdown
from edgekd.engines.reporting.points import pareto_front, target_points
from edgekd.engines.reporting.schema import SCHEMA_VERSION, ModelRow, Report


def _row(model: str, target: str, backend: str, fmt: str, precision: str, ms: float, kind: str = "measured",
         **extra) -> dict:
    return {"model": model, "target": target, "runtime": backend, "format": fmt, "precision": precision,
            "median_ms": ms, "kind": kind, "batch_size": 1, **extra}


def _parity(acc: float, torch_acc: float, samples: int = 359) -> dict:
    return {"accuracy": acc, "torch_accuracy": torch_acc, "samples": samples, "of": 359, "runtime": "x 1"}


def sample_report(**over) -> Report:
    """Teacher, student and an INT8 model whose ONNX Runtime accuracy (93.5%) is below its PyTorch one (96%)."""
    r = Report(
        edgekd_version="0", run_name="demo", run_dir="runs/demo", created="now", command="edgekd compress x.yaml",
        targets=[{"name": "host", "measured_here": True, "latency_budget_ms": 5.0},
                 {"name": "jetson", "measured_here": False, "latency_budget_ms": 0.25}],
        data={"source": "digits", "classes": 10, "train": 1438, "val": 359, "image_size": 32},
        models=[ModelRow(label="teacher", model="resnet18", accuracy=98.0, stage="teacher"),
                ModelRow(label="student", model="mnv3", accuracy=97.7, stage="distill"),
                ModelRow(label="quantized", model="mnv3", accuracy=96.0, stage="quantize")],
        exports=[
            {"model": "teacher", "format": "onnx", "precision": "fp32", "status": "ok", "path": "export/teacher.onnx",
             "parity": _parity(98.0, 98.0)},
            {"model": "student", "format": "onnx", "precision": "fp32", "status": "ok", "path": "export/student.onnx",
             "parity": _parity(97.7, 97.7)},
            {"model": "quantized", "format": "onnx", "precision": "int8", "status": "ok",
             "path": "export/quantized.onnx", "parity": _parity(93.5, 96.0)},
            {"model": "quantized", "format": "tensorrt", "precision": "int8", "status": "deferred", "path": None,
             "target": "jetson", "command": "python3 edgekd_kit.py build-engine quantized.onnx --precision int8",
             "note": "TensorRT engines are built on the device"},
        ],
        latency=[_row("teacher", "host", "torch", "torch", "fp32", 4.0), _row("teacher", "host", "onnxruntime", "onnx",
                 "fp32", 1.0), _row("student", "host", "torch", "torch", "fp32", 3.0),
                 _row("student", "host", "onnxruntime", "onnx", "fp32", 0.4),
                 _row("quantized", "host", "onnxruntime", "onnx", "int8", 0.3),
                 _row("teacher", "jetson", "tensorrt", "tensorrt", "fp16", 0.5, "predicted"),
                 _row("student", "jetson", "tensorrt", "tensorrt", "fp16", 0.45, "predicted"),
                 _row("quantized", "jetson", "tensorrt", "tensorrt", "int8", 0.2, "predicted")],
        pruning={"base": {"accuracy": 97.7, "macs": 9e5, "params": 6e5},
                 "steps": [{"step": 1, "macs": 4.5e5, "params": 3e5, "accuracy_after_pruning": 30.0, "accuracy": 95.0}]},
        stages={"teacher": {"seconds": 10.0}, "distill": {"seconds": 20.0}},
    )
    for k, v in over.items():
        setattr(r, k, v)
    r.deployment = recommend(r)
    return r


def test_each_point_has_the_accuracy_of_its_file_in_its_runtime() -> None:
    r = sample_report()
    host = {(p.model, p.runtime): p for p in target_points(r, "host")}
    assert host["quantized", "onnxruntime"].accuracy == 93.5  # not the fake-quantized PyTorch 96.0
    assert "ONNX Runtime on the exported ONNX file" in host["quantized", "onnxruntime"].source
    assert host["student", "torch"].accuracy == 97.7 and host["student", "torch"].source == "PyTorch"
    jetson = {p.model: p for p in target_points(r, "jetson")}
    # a TensorRT engine not built here: the ONNX file it is built from, in ONNX Runtime, and said so
    assert jetson["quantized"].accuracy == 93.5 and "TensorRT not run here" in jetson["quantized"].source
    # the device kit's own check, once imported, wins
    r.latency.append(_row("quantized", "jetson", "tensorrt", "tensorrt", "int8", 0.21,
                          validation={"accuracy": 94.1, "samples": 256, "torch_accuracy": 96.2}))
    kit = [p for p in target_points(r, "jetson") if p.kind == "measured"][0]
    assert kit.accuracy == 94.1 and kit.subset and "device kit" in kit.source
    front = pareto_front(target_points(r, "host"))
    assert [(p.model, p.runtime) for p in front] == [
        ("quantized", "onnxruntime"), ("student", "onnxruntime"), ("teacher", "onnxruntime")]


def test_deployment_choice_and_its_reason() -> None:
    r = sample_report()
    host, jetson = r.deployment["host"], r.deployment["jetson"]
    # within 1 point (report.accuracy_slack) of the most accurate (the teacher, 98.0), the student's ONNX file is fastest
    assert (host["model"], host["file"], host["accuracy"]) == ("student", "export/student.onnx", 97.7)
    assert host["speedup_vs_teacher_best"] == 2.5 and "fastest within 1 point" in host["reason"]
    assert "teacher, 98.00%" in host["reason"]
    # only the INT8 engine meets jetson's 0.25 ms budget: built on the device from the Q/DQ ONNX file
    assert jetson["model"] == "quantized" and jetson["kind"] == "predicted" and jetson["accuracy"] == 93.5
    assert jetson["source_file"] == "export/quantized.onnx" and jetson["built_on_device"]
    assert jetson["file"].startswith("export/quantized_int8") and jetson["file"].endswith(".engine")
    assert "`export/quantized.onnx`" in jetson["description"] and jetson["build_command"].startswith("python3 edgekd_kit")
    assert "1 option meets the 0.25 ms budget" in jetson["reason"]
    # where no compressed model beats the teacher, the teacher is the answer, and the reason says so
    r.targets[0]["latency_budget_ms"] = 0.35
    r.latency = [x for x in r.latency if x["model"] != "student"]
    r.deployment = recommend(r)
    assert r.deployment["host"]["model"] == "quantized"
    r.targets[0]["latency_budget_ms"] = 0.1
    assert "nothing meets the 0.1 ms budget" in recommend(r)["host"]["reason"]
    r.latency = [x for x in r.latency if x["target"] == "host" and x["model"] == "teacher"]
    r.latency.append(_row("student", "host", "torch", "torch", "fp32", 3.0))
    r.targets[0]["latency_budget_ms"] = 5.0
    assert recommend(r)["host"]["model"] == "teacher"
    assert "no compressed model is faster at this accuracy" in recommend(r)["host"]["reason"]


def test_inline_markdown_becomes_html() -> None:
    assert inline("*measured* on **host**: `a*b*c` <x> 2*3*4") == (
        "<em>measured</em> on <strong>host</strong>: <code>a*b*c</code> &lt;x&gt; 2*3*4")


def _visible_text(page: str) -> str:
    """The page's text outside tags and <code>, and without the images' base64."""
    page = re.sub(r"<code>.*?</code>", "", page, flags=re.S)
    page = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def _pngs(page: str) -> list[tuple[int, int]]:
    from PIL import Image

    sizes = []
    for b64 in re.findall(r"src='data:image/png;base64,([^']+)'", page):
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            im.load()  # decodes every pixel: a truncated PNG raises here
            sizes.append(im.size)
    return sizes


def test_html_layout_of_a_report() -> None:
    r = sample_report()
    page = render_html(r, {"student": [{"epoch": 1, "val_accuracy": 50.0}, {"epoch": 2, "val_accuracy": 90.0}]})
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings[:4] == ["What to deploy, per target", "Accuracy vs latency, per target", "Where the time went",
                            "Pruning steps"]
    assert headings[4].startswith("Distillation") and "All tables" in headings
    assert page.count("<figure><img alt='accuracy vs latency on") == 2  # one panel per target
    assert "Not measured" in page  # no KD-vs-baseline numbers in this report: said so
    text = _visible_text(page)
    assert "`" not in text and not re.search(r"(?<![\w*])\*\w[^*]*\*", text) and "**" not in text
    assert "<em>measured</em>" in page
    assert all(w > 100 and h > 100 for w, h in _pngs(page))
    caption = page.split("accuracy vs latency on host")[1].split("</figcaption>")[0]
    assert "PyTorch (PyTorch fp32)" in caption and "ONNX Runtime on the exported ONNX file itself" in caption
    assert "on all validation images" in caption and "budget, 5 ms" in caption
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page


def _search(**over) -> dict:
    """A search's report entry: three timed candidates, two on the front, the teacher at 1 ms."""
    lat = {"host": {"ms": 0.2, "kind": "measured"}}
    pts = [{"key": "a", "score": -1.0, "ms": 0.2, "kind": "measured", "feasible": True, "pareto": True},
           {"key": "b", "score": -2.0, "ms": 0.1, "kind": "measured", "feasible": True, "pareto": True},
           {"key": "c", "score": -3.0, "ms": 0.3, "kind": "measured", "feasible": False, "pareto": False}]
    s = {"space": "resnet", "space_size": 3, "strategy": "exhaustive", "evaluated": 3, "seconds": 1.0,
         "budgets": {"latency_ms": {"host": 0.25}}, "top": [],
         "chosen": {"key": "a", "model": "resnet18", "kwargs": {}, "score": -1.0, "latency": lat},
         "front": {"host": ["b", "a"]}, "points": {"host": pts},
         "teacher_point": {"latency": {"host": {"ms": 1.0, "kind": "measured", "runtime": "onnxruntime 1"}},
                           "params": 1, "macs": 1, "combined": 0.0}}
    return {**s, **over}


def test_search_trade_off_per_target() -> None:
    r = sample_report(search=_search())
    md, page = render_markdown(r), render_html(r)
    line = ("host: front: 2 candidates; chosen a (score -1.000, 0.2 ms, on the front); teacher at 1 ms "
            "(measured; score 0.000 against itself, the best possible).")
    assert line in md and inline(line) in page
    from rich.console import Console

    from edgekd.engines.reporting.terminal import search_table

    console = Console(file=io.StringIO(), width=400)
    console.print(search_table(r))  # `edgekd search` prints it under the ranking
    assert line in " ".join(console.file.getvalue().split())  # the caption wraps to the table's width
    assert "<h2 id='search'>Search: DisWOT score vs latency, per target</h2>" in page
    assert page.count("<figure><img alt='search score vs latency on host'") == 1
    assert all(w > 100 and h > 100 for w, h in _pngs(page))
    old = sample_report(search=_search(front=None, points=None, teacher_point=None))  # a run from before
    assert "front:" not in render_markdown(old) and "id='search'" not in render_html(old)


def test_a_subset_check_is_labelled_with_its_size() -> None:
    r = sample_report()
    r.exports[2]["parity"] = _parity(93.0, 95.0, samples=100)
    page, md = render_html(r), render_markdown(r)
    label = "onnx int8 (onnxruntime): 93.50% on 100 of 359 images (PyTorch on these: 95.00%)"
    r.models[2].runtime_accuracy = {"onnx int8 (onnxruntime)": 93.5}
    assert label in render_markdown(r)
    assert "subset of the validation images" in md and "100 of 359 validation images" in page


def test_finished_run_report(finished_run) -> None:
    _, report, run = finished_run
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION == "2.0"
    assert data["deployment"]["host"]["model"] in ("teacher", "student")
    assert set(data["distillation_effects"]["ece"]) == {"teacher", "student", "baseline"}
    assert all(e["parity"]["samples"] == e["parity"]["of"] == data["data"]["val"]
               for e in data["exports"] if e.get("parity"))
    page = (run / "report" / "report.html").read_text()
    text = _visible_text(page)
    assert "`" not in text and "**" not in text and not re.search(r"(?<![\w*])\*\w[^*]*\*", text)
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", page)[:2] == ["What to deploy, per target",
                                                            "Accuracy vs latency, per target"]
    assert "Distillation gained" in page or "Plain training won" in page  # compare_baseline: auto measured it
    assert len(_pngs(page)) >= 4  # host panel, stage times, per-class change, training curves


PROBE = """<script>
window.addEventListener('load', () => {
  const d = document.documentElement;
  const p = document.createElement('pre'); p.id = 'probe';
  p.textContent = JSON.stringify({scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    images: Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight]),
    wideTables: Array.from(document.querySelectorAll('.tbl')).filter(t => t.scrollWidth > t.clientWidth + 1).length});
  document.body.appendChild(p);
});
</script>"""


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)


def _browser_probe(browser: str, page: str, tmp_path: Path) -> dict:
    """Load the page in headless Chromium at 1400 px and read back what the probe script measured."""
    f = tmp_path / "probe.html"
    f.write_text(page.replace("</body>", PROBE + "</body>"))
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1400,1000", "--virtual-time-budget=10000", "--dump-dom", f.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout, re.S)
    assert found, f"no probe output from {browser}: {out.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_renders_in_chromium_at_1400px(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary found (apt-get install chromium; .ci/run installs it as root)")
    _, _, run = request.getfixturevalue("finished_run")  # built only when a browser can look at it
    page = (run / "report" / "report.html").read_text()
    got = _browser_probe(browser, page, tmp_path)
    assert got["images"] and all(w > 0 and h > 0 for w, h in got["images"]), got
    assert got["scrollWidth"] <= got["clientWidth"] == 1400, got
    assert got["wideTables"] == 0, got
    # the probe sees what it is meant to: a 2000 px element overflows, a broken image has no width
    broken = page.replace("</body>", "<div style='width:2000px'>x</div><img src='data:image/png;base64,AAAA'></body>")
    bad = _browser_probe(browser, broken, tmp_path)
    assert bad["scrollWidth"] > 1400 and bad["images"][-1][0] == 0
