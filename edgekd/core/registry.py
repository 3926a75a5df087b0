"""Name → builder registries, after timm's `register_model` / `create_model`.

Adding a loss, data set, exporter, ... is one decorated function (or class) in one file.
A registry knows the modules that fill it, so asking it for a name imports them lazily:
core code (the config validator) can check names without importing the layers above it.
Each entry may declare a pydantic model for its parameters; the config validates a
component's extra keys against it and the error names the key and the valid ones.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ConfigDict

from edgekd.core.errors import ConfigError

T = TypeVar("T")


class NoParams(BaseModel):
    """Parameters of an entry that takes none: any extra key is an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    params: type[BaseModel]
    help: str


class Registry(Generic[T]):
    """A named collection of builders of one kind (``what`` is used in messages)."""

    def __init__(self, what: str, modules: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()) -> None:
        self.what = what
        self._modules = modules  # or a function giving them (read from a table when asked)
        self._entries: dict[str, Entry[T]] = {}
        self._imported: set[str] = set()

    def register(
        self, name: str, *, params: type[BaseModel] = NoParams, help: str = ""
    ) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.what} {name!r} registered twice")
            doc = help or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, obj, params, doc)
            return obj

        return deco

    def _load(self) -> None:
        modules = self._modules() if callable(self._modules) else self._modules
        for mod in modules:
            if mod not in self._imported:
                self._imported.add(mod)
                importlib.import_module(mod)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entry(self, name: str, *, key: str | None = None) -> Entry[T]:
        """The entry for ``name``; an unknown name is a ConfigError listing the valid ones."""
        self._load()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            where = f"{key}: " if key else ""
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{where}unknown {self.what} {name!r}",
                hint=f"{hint}valid {self.what} names: {', '.join(self.names())}",
            )
        return self._entries[name]

    def get(self, name: str, *, key: str | None = None) -> T:
        return self.entry(name, key=key).obj

    def parse_params(self, name: str, values: dict[str, Any], *, key: str, siblings: Iterable[str] = ()) -> BaseModel:
        """Validate ``values`` against the entry's parameter model; errors name the key. An unknown
        key is matched against the parameters and ``siblings`` (the section's own keys)."""
        from pydantic import ValidationError

        entry = self.entry(name, key=key)
        try:
            return entry.params.model_validate(values)
        except ValidationError as exc:
            valid = ", ".join(entry.params.model_fields) or "none"
            raise ConfigError(
                f"{key} ({self.what} {name!r}): {format_validation_error(exc, model=entry.params, siblings=siblings)}",
                hint=f"parameters of {self.what} {name!r}: {valid}",
            ) from None


def format_validation_error(exc: Exception, prefix: str = "", *, model: type[BaseModel] | None = None,
                            siblings: Iterable[str] = ()) -> str:
    """One readable line per pydantic error: ``a.b.c: message (got value)``. Given the validated
    ``model``, an unknown key gets the closest valid key of its section (``did you mean``)."""
    lines = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            valid = [*_section_keys(model, err["loc"]), *(siblings if len(err["loc"]) == 1 else ())]
            close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1) if err["loc"] else []
            msg = f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        got = err.get("input")
        got_s = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{got_s}" if loc else f"{msg}{got_s}")
    return "; ".join(lines)


def _section_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) model holding the key at ``loc[-1]``, walking ``model``'s
    fields along ``loc`` (list indices skipped); empty when the walk leaves the models."""
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model in an annotation: ``M``, ``M | None``, ``list[M]``."""
    try:
        if issubclass(annotation, BaseModel):
            return annotation
    except TypeError:  # not a class: a union or a generic alias
        pass
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
