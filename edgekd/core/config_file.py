"""Reading ``model.yaml`` (``safe_load``) and ``--set KEY=VALUE`` overrides into the
validated schema of core/config.py, with errors that name the file, line and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgekd.core.config import Config
from edgekd.core.errors import ConfigError
from edgekd.core.registry import format_validation_error


def _set_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to the raw config mapping."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE", hint="e.g. --set distill.epochs=2")
    key, _, value = assignment.partition("=")
    if not key.strip() or any(not p for p in key.strip().split(".")):
        raise ConfigError(f"--set {assignment!r}: no key before '=' (or an empty part in it)",
                          hint="name the key in dotted form: --set distill.epochs=2")
    parts = key.strip().split(".")
    node: Any = raw
    for i, p in enumerate(parts[:-1]):
        where = ".".join(parts[:i + 1])
        if isinstance(node, list) and p.isdecimal() and int(p) < len(node):
            node = node[int(p)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {where} is not in the config file",
                              hint=f"set the whole value instead: --set '{'.'.join(parts[:i])}=[...]'")
        if node.get(p) is None and parts[i + 1].isdecimal():
            raise ConfigError(f"--set {key}: {where} is not in the config file",
                              hint=f"set the whole list instead: --set '{where}=[{{name: kl}}]'")
        if node.get(p) is None:  # absent, or left empty in the YAML: a section to fill
            node[p] = {}
        node = node[p]
    last = parts[-1]
    parsed = _safe_load(value, f"--set {assignment!r}", hint="quote a value YAML would misread, "
                        "e.g. --set 'name=\"a: b\"'") if value != "" else None
    if isinstance(node, list) and last.isdecimal():
        if int(last) >= len(node):
            where = ".".join(parts[:-1])
            raise ConfigError(f"--set {key}: {where} has {len(node)} item(s), no item {last}",
                              hint=f"set the whole list instead: --set '{where}=[...]'")
        node[int(last)] = parsed
    elif isinstance(node, dict):
        node[last] = parsed
    else:
        raise ConfigError(f"--set {key}: cannot set a key inside a {type(node).__name__}",
                          hint=f"set the whole value instead: --set '{'.'.join(parts[:-1])}=...'")


def _safe_load(text: str, where: str, hint: str = "fix the YAML syntax there") -> Any:
    """``yaml.safe_load``, every failure a ConfigError naming ``where`` (and the line when known)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}", hint=hint) from None
    except Exception as exc:  # PyYAML's constructors raise ValueError, IndexError, ... on bad tags ('!!float ;')
        raise ConfigError(f"{where}: invalid YAML: {type(exc).__name__}: {exc}", hint=hint) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with ``safe_load``; syntax errors give file, line and column."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", hint="check the path, or run `edgekd init` to write one")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # a folder, unreadable, or not text
        why = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError(f"cannot read config file {path}: {why}", hint="pass a YAML file (UTF-8 text)") from None
    raw = _safe_load(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


def _blame(exc: ValidationError, overrides: list[str] | tuple[str, ...], origin: str) -> str:
    """Where the bad value came from: the ``--set`` that wrote every failing key, else the file."""
    keys = [a.partition("=")[0].strip() for a in overrides]
    failing = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]

    def by_set(loc: str) -> str | None:
        return next((a for a, k in zip(overrides, keys, strict=True)
                     if loc == k or loc.startswith(k + ".") or k.startswith(loc + ".")), None)

    blamed = [by_set(loc) for loc in failing]
    if failing and all(blamed):
        return ", ".join(f"--set {a}" for a in dict.fromkeys(blamed))
    return origin


def load_config(
    source: str | Path | dict[str, Any] | Config,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """Build a validated Config from a YAML path, a mapping, or a Config (copied)."""
    if isinstance(source, Config):
        raw: dict[str, Any] = source.model_dump(mode="json", exclude_unset=True)
        origin = "config"
    elif isinstance(source, dict):
        raw, origin = copy.deepcopy(source), "config"
    else:
        path = Path(source)
        raw, origin = read_yaml(path), str(path)
        raw.setdefault("name", path.stem)
    for assignment in overrides:
        _set_override(raw, assignment)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{_blame(exc, overrides, origin)}: {format_validation_error(exc, model=Config)}",
            hint="see `edgekd init` for a commented example of every key",
        ) from None
