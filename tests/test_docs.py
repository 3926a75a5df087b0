"""The documentation describes the product as it is: the configuration reference is generated
from the config model and current, every key is described, the README stays a front page,
links resolve, and no page or module tells how the work was done or points outside the
repository."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import docs_script

ROOT = Path(__file__).resolve().parents[1]


def _reference():  # noqa: ANN202 - the module
    return docs_script("config_reference")


def test_the_configuration_reference_is_current() -> None:
    """Regenerate with `python docs/config_reference.py --write` after changing the config model."""
    ref = _reference()
    assert (ROOT / "docs" / "configuration.md").read_text() == ref.render()


def test_every_config_key_is_described() -> None:
    assert _reference().undescribed() == []


def test_the_reference_lists_every_key() -> None:
    from edgekd.core.config import BenchConfig, Config

    text = _reference().render()
    for key in ("`runtimes`", "`max_accuracy_drop`", "`teacher_pruned`", "`flops_ratio`", "`mlflow`"):
        assert key in text
    assert set(BenchConfig.model_fields) <= set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert "## `bench`" in text and len(Config.model_fields) > 10


def test_readme_is_a_front_page_with_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert 'pip install -e ".[dev]"' in readme and "edgekd compress examples/digits.yaml --target host" in readme
    assert "\npytest" in readme


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in _pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


HISTORY = re.compile(r"\b[Ii]ssue #?\d+|\bsession \d+|\bthis session\b|\.\./shared|REFERENCES\.md|RESULTS §\d")


def test_no_page_or_module_tells_how_the_work_was_done() -> None:
    files = [*_pages(), *ROOT.glob("edgekd/**/*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/*"),
             *ROOT.glob("export/*.py"), *ROOT.glob("profiles/*.yaml")]
    found = [f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}" for f in files if f.is_file()
             for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1) if HISTORY.search(line)]
    assert not found, "\n".join(found)
