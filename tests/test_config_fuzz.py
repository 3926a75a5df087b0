"""Property test of config loading: whatever the YAML file and the ``--set`` overrides hold,
the loader either returns a Config or raises an EdgeKDError (one message, an exit code),
never another exception (a traceback)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekd.core import registries
from edgekd.core.config import Config
from edgekd.core.config_file import load_config
from edgekd.core.errors import EdgeKDError
from edgekd.core.registry import _model_in

EXAMPLES = int(os.environ.get("EDGEKD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(model: Any, prefix: str = "") -> list[str]:
    """Every dotted key of the schema: ``distill.optimizer.lr``, ..."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.append(key)
        sub = _model_in(field.annotation)
        if sub is not None and key.count(".") < 4:
            out += _paths(sub, f"{key}.")
    return out


def _registry_words() -> list[str]:
    """Registered names and their parameters' keys, the words components are written in."""
    words = []
    for reg in (registries.DATASETS, registries.LOSSES, registries.SEARCH_SPACES, registries.IMPORTANCES,
                registries.EXPORTERS, registries.RUNTIMES):
        for name in reg.names():
            words += [name, *reg.entry(name).params.model_fields]
    return words


PATHS = _paths(Config)
WORDS = sorted({p.rsplit(".", 1)[-1] for p in PATHS} | set(_registry_words()))

keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-5, 5), st.floats(), st.text(max_size=12),
                    st.sampled_from(WORDS))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)
documents = st.dictionaries(keys, values, max_size=6)


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid tiny config with a few real keys (at any depth) set to random values."""
    cfg = tiny_config(Path("runs"))  # loading never creates it
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        node = cfg
        *parents, last = path.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[last] = draw(values)
    return cfg


dotted = st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(["0", "1", "9", "²", ""]), st.text(max_size=5)),
                  min_size=1, max_size=4).map(".".join)
yaml_text = st.one_of(values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()), st.text(max_size=15))
real_keys = st.builds(str.__add__, st.sampled_from(PATHS), st.sampled_from(["", ".0", ".9", ".²", ".x", ".", ".0.name"]))
overrides = st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", st.one_of(dotted, real_keys), yaml_text),
                               st.text(max_size=15)), max_size=3)


@pytest.fixture(scope="module")
def yaml_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "model.yaml"


def _load(path: Path, text: str | bytes, sets: list[str]) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with contextlib.suppress(EdgeKDError):  # one message and an exit code: what a user should see
        load_config(path, sets)


@FUZZ
@given(doc=documents, sets=overrides)
def test_random_config_documents_raise_only_edgekd_errors(yaml_file: Path, doc: dict[str, Any],
                                                          sets: list[str]) -> None:
    _load(yaml_file, yaml.safe_dump(doc), sets)


@FUZZ
@given(doc=mutated_configs(), sets=overrides)
def test_real_keys_with_random_values_raise_only_edgekd_errors(yaml_file: Path, doc: dict[str, Any],
                                                                    sets: list[str]) -> None:
    _load(yaml_file, yaml.safe_dump(doc), sets)


@FUZZ
@given(text=st.one_of(st.text(max_size=60), st.binary(max_size=30),
                      st.sampled_from(["[", "{a: 1", "a: b: c", "- 1", "? [a]: b", "&a [*a]", "\t", "!!binary x",
                                       "a: !!float nope", ":", "a: !!timestamp x", "a: !!int 0x", "[" * 2000])))
def test_random_yaml_text_raises_only_edgekd_errors(yaml_file: Path, text: str | bytes) -> None:
    _load(yaml_file, text, [])
