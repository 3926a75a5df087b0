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
    parts = key.strip().split(".")
    node: Any = raw
    for i, p in enumerate(parts[:-1]):
        if isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not in the config file",
                              hint=f"set the whole value instead: --set '{'.'.join(parts[:i])}=[...]'")
        if p not in node and parts[i + 1].isdigit():
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not in the config file",
                              hint=f"set the whole list instead: --set '{'.'.join(parts[:i + 1])}=[{{name: kl}}]'")
        node = node.setdefault(p, {})
    last = parts[-1]
    parsed = yaml.safe_load(value) if value != "" else None
    if isinstance(node, list) and last.isdigit():
        node[int(last)] = parsed
    elif isinstance(node, dict):
        node[last] = parsed
    else:
        raise ConfigError(f"--set {key}: cannot set a key inside a {type(node).__name__}")


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with ``safe_load``; syntax errors give file, line and column."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", hint="check the path, or run `edgekd init` to write one")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}", hint="fix the YAML syntax there") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


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
            f"{origin}: {format_validation_error(exc, model=Config)}",
            hint="see `edgekd init` for a commented example of every key",
        ) from None
