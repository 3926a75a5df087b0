"""The layering rules of the design notes, checked on the code: imports point down only, no
import cycle, no stage imports another stage; and the one formats table is the only one."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import docs_script

ROOT = Path(__file__).resolve().parents[1]


G = docs_script("import_graph")


def test_no_upward_import_no_cycle_no_stage_importing_a_stage() -> None:
    found = G.problems(G.module_graph())
    assert not found, "\n".join(found)


def test_the_checker_catches_what_it_forbids() -> None:
    """The same checks on small made-up graphs: an upward arrow, a cycle of modules or of engine
    packages, stage → stage, and a module left loose outside the package of its job."""
    up = {"edgekd.core.config": {"edgekd.stages.base"}, "edgekd.stages.base": set()}
    assert any("may not import" in p for p in G.problems(up))
    engine_up = {"edgekd.engines.latency.oracle": {"edgekd.stages.base"}, "edgekd.stages.base": set()}
    assert any("engines may not import stages" in p for p in G.problems(engine_up, packages=set()))
    engines_circle = {"edgekd.engines.latency.oracle": {"edgekd.engines.train.trainer"},
                      "edgekd.engines.train.trainer": {"edgekd.engines.latency.timing"},
                      "edgekd.engines.latency.timing": set()}
    assert any(p.startswith("package cycle: engines.latency -> engines.train") for p in G.problems(engines_circle))
    loose = {"edgekd.helpers": set(), "edgekd.engines.util": set(), "edgekd.cli": set()}
    assert sorted(p.split(":")[0] for p in G.problems(loose, packages=set())) == ["edgekd.engines.util", "edgekd.helpers"]
    loop = {"edgekd.engines.latency.a": {"edgekd.engines.latency.b"}, "edgekd.engines.latency.b": {"edgekd.engines.latency.a"}}
    assert any("cycle" in p for p in G.problems(loop))
    stage = {"edgekd.stages.quantize": {"edgekd.stages.export"}, "edgekd.stages.export": {"edgekd.stages.base"},
             "edgekd.stages.base": set()}
    assert [p for p in G.problems(stage) if "stage imports another stage" in p] == [
        "edgekd.stages.quantize imports edgekd.stages.export: a stage imports another stage"]


def test_lazy_and_relative_imports_count(tmp_path: Path) -> None:
    pkg = tmp_path / "edgekd" / "core"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("def f():\n    from edgekd.stages import base\n    from . import b\n")
    (pkg / "b.py").write_text("")
    old = G.ROOT
    G.ROOT = tmp_path / "edgekd"
    try:
        mods = {"edgekd.core.a", "edgekd.core.b", "edgekd.stages.base", "edgekd.stages"}
        assert G.imports_of(pkg / "a.py", mods) == {"edgekd.stages.base", "edgekd.core.b"}
    finally:
        G.ROOT = old


def test_the_drawing_in_docs_is_current() -> None:
    """docs/imports.md holds the Mermaid drawing; regenerate it with `python docs/import_graph.py`."""
    text = (ROOT / "docs" / "imports.md").read_text()
    assert G.mermaid(G.module_graph()) in text


def test_device_kit_formats_match_the_table() -> None:
    """The kit imports nothing of edgekd, so it keeps a copy of the suffix table: the same one."""
    from edgekd.core.devicekit import load_kit
    from edgekd.core.formats import FORMATS

    kit = load_kit()
    ours = {s: (f.name, f.runtimes[0]) for f in FORMATS for s in f.suffixes}
    assert ours == kit.SUFFIX_FORMAT


@pytest.mark.parametrize("bad, close", [("tensortr", "tensorrt"), ("onnxrt", "onnxruntime"), ("openvno", "openvino")])
def test_profile_runtimes_are_checked_against_the_table(tmp_path: Path, bad: str, close: str) -> None:
    from edgekd.core.errors import ProfileError
    from edgekd.core.profiles import load_profile_file

    text = (ROOT / "profiles" / "jetson-orin-nano.yaml").read_text().replace("[tensorrt, onnxruntime]",
                                                                            f"[{bad}, onnxruntime]")
    assert bad in text
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ProfileError, match=f"unknown runtime '{bad}'; did you mean '{close}'"):
        load_profile_file(tmp_path / "p.yaml")


def test_one_table_drives_formats_backends_and_exporters() -> None:
    from edgekd.core import registries
    from edgekd.core.formats import FORMATS, RUNTIMES, format_of_path

    assert registries.EXPORTERS.names() == sorted(f.name for f in FORMATS if f.exporter)
    assert registries.RUNTIMES.names() == sorted(r.name for r in RUNTIMES)
    assert {r for f in FORMATS for r in f.runtimes} == {r.name for r in RUNTIMES}
    assert format_of_path(Path("m_int8.xml")).name == "openvino" and format_of_path(Path("x.plan")).name == "tensorrt"
    assert format_of_path(Path("x.tflite")) is None
