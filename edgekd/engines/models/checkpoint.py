"""Loading and saving weights. Checkpoints are untrusted input.

Only tensors are ever read: safetensors files, or ``torch.load(weights_only=True)``,
which refuses pickles that would run code. A checkpoint whose classifier does not match
the data's class count is an error that says so, not a silent partial load.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from edgekd.core.errors import ConfigError, ModelError
from edgekd.core.rundir import atomic_path

SAVE_FORMATS = {".pt": "torch weights-only state_dict", ".pth": "torch weights-only state_dict",
                ".safetensors": "safetensors"}
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "ema", "net")


def unreadable_safetensors(what: str, path: Path, exc: Exception) -> ModelError:
    return ModelError(f"{what} {path} is not a readable safetensors file (truncated, or not safetensors): {exc}",
                      hint="copy the file again (compare its size with the original), or re-save it with "
                           "safetensors.torch.save_file(model.state_dict(), path)")


def read_state_dict(path: Path, *, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Tensors from ``path`` (safetensors or a weights-only torch file), unwrapped."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{what} not found: {path}", hint="check the path in your config")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise unreadable_safetensors(what, path, exc) from None
    return _unwrap(_torch_load(path, what), path, what)


def _torch_load(path: Path, what: str) -> object:
    """``torch.load(weights_only=True)``; what it refuses or cannot read is a ``ModelError`` saying why."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported global:?\s*(?:GLOBAL\s*)?([\w.]+)", str(exc), re.IGNORECASE)
        if found or "GLOBAL" in str(exc):
            name = f" ({found.group(1)})" if found else ""
            raise ModelError(
                f"refused to load {what} {path}: it holds Python objects{name}, not only tensors, "
                "and unpickling them could run code",
                hint="re-save it as a plain state_dict (torch.save(model.state_dict(), f)) or as safetensors",
            ) from None
        raise ModelError(f"{what} {path} is corrupt or not a torch checkpoint (it does not unpickle)",
                         hint="re-save it with torch.save(model.state_dict(), f) or as safetensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{what} {path} is corrupt or not a torch checkpoint: {exc}",
                         hint="copy the file again (it may be truncated), or re-save it with "
                              "torch.save(model.state_dict(), path)") from None


RECORD_KEYS = ("classes", "class_names", "class_to_idx", "preprocess", "accuracy", "format")


def _class_list(value: object) -> list[str] | None:
    """``["cat", "dog"]``, or torchvision ImageFolder's ``class_to_idx`` ``{"cat": 0, "dog": 1}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if isinstance(value, Mapping):
        return [str(k) for k, _ in sorted(value.items(), key=lambda kv: int(kv[1]))]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return None


def read_record(path: Path, what: str = "teacher checkpoint") -> dict[str, object]:
    """What a checkpoint says about itself, beside its tensors: class names (in output order),
    preprocessing and, when edgekd trained it, the accuracy it reached then. Read from, first to
    last: a sidecar ``<file>.json`` or ``<stem>.json``; safetensors metadata; the non-tensor
    entries of a torch checkpoint dict (``{"state_dict": ..., "class_to_idx": ...}``). Empty when
    it says nothing."""
    path = Path(path)
    raw: dict[str, object] = {}
    for side in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if side.exists() and side != path:
            try:
                raw = json.loads(side.read_text())
            except (json.JSONDecodeError, OSError) as exc:
                raise ModelError(f"{what} sidecar {side} is not valid JSON: {exc}") from None
            if not isinstance(raw, dict):
                raise ModelError(f"{what} sidecar {side} holds a {type(raw).__name__}, not an object",
                                 hint='write {"classes": [...], "preprocess": {...}}')
            raw["_from"] = f"sidecar {side.name}"
            break
    if not raw and path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise unreadable_safetensors(what, path, exc) from None
        raw = {k.removeprefix("edgekd."): v for k, v in meta.items()}
        raw["_from"] = "safetensors metadata"
    elif not raw:
        obj = _torch_load(path, what)
        if isinstance(obj, Mapping):
            raw = {k: v for k, v in obj.items() if k in RECORD_KEYS}
            raw["_from"] = "checkpoint dict"
    out: dict[str, object] = {"from": raw.get("_from", "")}
    classes = _class_list(raw.get("classes", raw.get("class_names", raw.get("class_to_idx"))))
    if classes:
        out["classes"] = classes
    prep = raw.get("preprocess")
    if isinstance(prep, str):
        try:
            prep = json.loads(prep)
        except json.JSONDecodeError:
            raise ModelError(f"checkpoint {path}: its 'preprocess' metadata is not JSON: {prep[:80]!r}") from None
    if isinstance(prep, Mapping):
        out["preprocess"] = dict(prep)
    if str(raw.get("format", "")).startswith("edgekd-teacher/"):  # what edgekd measured when it trained it
        with contextlib.suppress(TypeError, ValueError):
            out["accuracy"] = float(raw.get("accuracy"))  # type: ignore[arg-type]
    return out


def _unwrap(obj: object, path: Path, what: str) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd = dict(obj)
            if all(k.startswith("module.") for k in sd):  # saved from DataParallel/DDP
                sd = {k[len("module."):]: v for k, v in sd.items()}
            return sd
        if isinstance(obj, Mapping):
            key = next((k for k in WRAPPER_KEYS if k in obj), None)
            if key is not None:
                obj = obj[key]
                continue
        break
    raise ModelError(
        f"{what} {path} holds no state_dict (found {type(obj).__name__})",
        hint=f"save model.state_dict(), or a dict with one of the keys {WRAPPER_KEYS}",
    )


def load_weights(model: nn.Module, path: Path, *, num_classes: int, what: str = "checkpoint") -> None:
    """Load ``path`` into ``model`` strictly; mismatches get a message that names them."""
    sd = read_state_dict(path, what=what)
    own = model.state_dict()
    shape_bad = [k for k in sd if k in own and own[k].shape != sd[k].shape]
    for k in shape_bad:
        if own[k].ndim >= 1 and own[k].shape[0] == num_classes and sd[k].shape[0] != num_classes:
            raise ModelError(
                f"{what} {path} was trained for {sd[k].shape[0]} classes ({k}: {list(sd[k].shape)}) "
                f"but the data has {num_classes} classes",
                hint="use a checkpoint trained on this data set, or drop checkpoint: and set train: to train on it",
            )
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if shape_bad or missing or unexpected:
        parts = []
        if shape_bad:
            parts.append(f"{len(shape_bad)} shape mismatches (e.g. {shape_bad[0]}: {list(sd[shape_bad[0]].shape)} vs {list(own[shape_bad[0]].shape)})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise ModelError(
            f"{what} {path} does not match the configured architecture: " + "; ".join(parts),
            hint="check the model name and kwargs the checkpoint was trained with",
        )
    model.load_state_dict(sd, strict=True)


def save_format(path: Path, key: str) -> str:
    """The format edgekd writes to ``path`` (config key ``key``), from its suffix; a suffix that
    promises no format edgekd writes is refused before any time is spent training."""
    fmt = SAVE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{key} {path}: edgekd writes this file, and {Path(path).suffix or 'no suffix'!r} names no format it "
            f"writes (accepted: {', '.join(SAVE_FORMATS)})",
            hint=f"name it {Path(path).with_suffix('.pt').name} (torch) or "
            f"{Path(path).with_suffix('.safetensors').name} (safetensors)",
        )
    return fmt


def save_state_dict(state: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write tensors atomically, in the format the suffix promises: safetensors for ``.safetensors``,
    else a weights-only torch file (``{"state_dict": ..., **metadata}``) that ``torch.load(...,
    weights_only=True)`` and edgekd both read. Shared storage is cloned apart."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items() if isinstance(v, torch.Tensor)}
    with atomic_path(Path(path)) as tmp:
        if Path(path).suffix.lower() == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, str(tmp), metadata=metadata)
        else:
            torch.save({"state_dict": tensors, **(metadata or {})}, tmp)
