"""The configuration reference (docs/configuration.md), generated from the config model.

    python docs/config_reference.py            # print it
    python docs/config_reference.py --write    # rewrite docs/configuration.md

Every key of ``model.yaml`` with its type, default and description, read from the pydantic
model in edgekd/core/config.py, so the reference cannot drift from what edgekd validates.
tests/test_docs.py fails when the page is stale or a key has no description.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"

HEAD = """# Configuration reference

Every key of a run's `model.yaml`, generated from the config model (`edgekd/core/config.py`) by
`python docs/config_reference.py --write`. A config needs only `data` and `teacher`; every other
key has the default shown. `edgekd init` writes a starter file with the defaults, and
`--set key=value` overrides any key on the command line (`--set distill.epochs=2`).

Components (`loss` terms, `data.source`, `search.space`, `prune.importance`) are written flat:
`{name: kl, temperature: 4.0, alpha: 0.9}`; their own parameters are listed under
[Components](#components).
"""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (list, tuple, dict):
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    name = getattr(tp, "__name__", str(tp))
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "Path": "path",
            "PositiveInt": "integer > 0", "PositiveFloat": "number > 0"}.get(name, name)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        changed = value.model_dump(mode="json", exclude_defaults=True)
        return f"`{json.dumps(changed)}`" if changed else "defaults below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        value = [v.spec() if hasattr(v, "spec") else v.model_dump(mode="json") for v in value]
    return f"`{json.dumps(value, default=str)}`"


def _sub_model(tp: Any) -> type[BaseModel] | None:
    """The config model a key holds, also when optional (``TeacherTrainConfig | None``)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for a in typing.get_args(tp):
        m = _sub_model(a)
        if m is not None and typing.get_origin(tp) in (typing.Union, types.UnionType):
            return m
    return None


def sections(model: type[BaseModel], prefix: str = "", seen: dict[type, str] | None = None
             ) -> list[tuple[str, type[BaseModel], list[tuple]]]:
    """(key path, model, rows) for ``model`` and every mapping below it, depth first. A model used
    in several places (the training settings) is listed once; later places link to it."""
    seen = {} if seen is None else seen
    seen.setdefault(model, prefix.rstrip(".") or "(top level)")
    rows, below = [], []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _sub_model(field.annotation)
        desc = (field.description or "").strip()
        if sub is not None and not hasattr(sub, "registry"):
            desc = desc or _first_sentence(sub)
            if sub in seen or any(issubclass(sub, s) and _same_fields(sub, s) for s in seen):
                first = seen.get(sub) or next(v for s, v in seen.items() if issubclass(sub, s) and _same_fields(sub, s))
                desc += f" (keys as in [`{first}`](#{_anchor(first)}))"
            else:
                below += sections(sub, f"{key}.", seen)
        rows.append((name, _type_name(field.annotation), _default(field), desc))
    return [(prefix.rstrip(".") or "(top level)", model, rows), *below]


def _same_fields(a: type[BaseModel], b: type[BaseModel]) -> bool:
    return set(a.model_fields) == set(b.model_fields)


def _first_sentence(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _anchor(path: str) -> str:
    return path.replace(".", "").replace("(", "").replace(")", "").replace(" ", "-").lower()


def undescribed(model: type[BaseModel] | None = None) -> list[str]:
    """Keys without a description (the reference would leave them unexplained)."""
    from edgekd.core.config import Config

    return [f"{path}.{name}" if path != "(top level)" else name
            for path, _, rows in sections(model or Config) for name, _, _, desc in rows if not desc]


def _components() -> str:
    """Each registered component's own parameters (losses, data sets, search spaces, importances)."""
    from edgekd.core import registries

    out = ["## Components", ""]
    for reg in (registries.LOSSES, registries.DATASETS, registries.SEARCH_SPACES, registries.IMPORTANCES):
        out += [f"### {reg.what}", ""]
        for name in reg.names():
            entry = reg.entry(name)
            params = getattr(entry, "params", None)
            out.append(f"- **`{name}`**: {entry.help or ''}".rstrip())
            if isinstance(params, type) and issubclass(params, BaseModel):
                for pname, f in params.model_fields.items():
                    desc = f" {f.description}" if f.description else ""
                    out.append(f"  - `{pname}` ({_type_name(f.annotation)}, default {_default(f)}){desc}")
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    from edgekd.core.config import Config

    out = [HEAD]
    for path, model, rows in sections(Config):
        out += [f"## `{path}`" if path != "(top level)" else "## Top level", ""]
        doc = _first_sentence(model)
        if doc:
            out += [doc, ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        out += [f"| `{n}` | {t} | {d} | {_cell(desc)} |" for n, t, d, desc in rows]
        out.append("")
    out.append(_components())
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    text = render()
    if args.write:
        PAGE.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
