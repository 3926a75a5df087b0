"""Resolve a run's input contract and class order from the teacher, before any image is decoded.

A teacher loaded from a checkpoint was trained elsewhere: its preprocessing and class order
are facts about it, not choices. Field by field, the first source that states one wins:

1. the config (``data.image_size``, ``data.preprocess``);
2. the checkpoint's own record (a sidecar JSON, safetensors metadata, or the keys beside
   the state_dict: ``preprocess``, ``classes`` / ``class_to_idx``), which edgekd also writes
   when it trains a teacher into ``teacher.checkpoint``;
3. the model's timm data config (``resolve_data_config`` on its ``pretrained_cfg``: every
   timm model has one, and an entry point may set ``model.pretrained_cfg`` on what it returns);
4. defaults: squash to 32 px, bilinear, mean/std of this training set.

A teacher trained in this run skips 2 and 3: edgekd chooses its input, so the
data-set-statistics default stays (and is stated in the report). So does a checkpoint with
``teacher.train`` set (train-if-missing): edgekd wrote it, with or without a record (older
versions wrote none), so timm's ImageNet defaults never apply to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekd.core.config import Config
from edgekd.core.errors import ModelError
from edgekd.engines.data.bundle import Data, load_data
from edgekd.engines.data.preprocess import Preprocess, config_layer, from_record, from_timm_config, resolve
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_record


@dataclass
class Contract:
    preprocess: Preprocess
    classes: list[str] | None = None  # the teacher's output order, when its checkpoint records it


def teacher_checkpoint(config: Config) -> Path | None:
    """The teacher checkpoint that exists now (None: the teacher will be trained in this run)."""
    ckpt = config.teacher.checkpoint
    return Path(ckpt) if ckpt is not None and Path(ckpt).exists() else None


def timm_data_config(name: str, kwargs: dict[str, Any], num_classes: int) -> dict[str, Any] | None:
    """timm's resolved data config for a model: by name for timm models, from the built module's
    ``pretrained_cfg`` for entry points (called once with the class count, to read it)."""
    from timm.data import resolve_data_config

    if ":" not in name:
        import timm

        cfg = timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None
        return resolve_data_config(pretrained_cfg=cfg.to_dict()) if cfg is not None else None
    model = build_model(name, num_classes, kwargs, what="teacher.model")
    if not getattr(model, "pretrained_cfg", None):
        return None
    return resolve_data_config(model=model)


def resolve_contract(config: Config) -> Contract:
    layers = [config_layer(config.data)]
    ckpt = teacher_checkpoint(config)
    contract_classes = None
    if ckpt is not None:
        record = read_record(ckpt)
        contract_classes = record.get("classes")
        if record.get("preprocess"):
            layers.append(from_record(record["preprocess"], f"teacher checkpoint ({record['from']})"))
        t = config.teacher
        if t.train is None:  # with teacher.train, edgekd trains (and owns) this checkpoint: its input is edgekd's
            timm_cfg = timm_data_config(t.model, t.kwargs, len(contract_classes) if contract_classes else 1000)
            if timm_cfg is not None:
                layers.append(from_timm_config(timm_cfg, f"timm pretrained_cfg of {t.model}"))
    return Contract(resolve(layers), contract_classes)  # type: ignore[arg-type]


def order_classes(data: Data, classes: list[str] | None) -> tuple[Data, str | None]:
    """The data in the teacher's class order; a class set that differs is refused, never mislabelled."""
    if not classes or classes == data.class_names:
        return data, None
    if sorted(classes) == sorted(data.class_names):
        moved = sum(a != b for a, b in zip(classes, data.class_names, strict=True))
        return data.with_class_order(classes), (
            f"classes renumbered to the teacher checkpoint's order ({moved} of {len(classes)} moved)")
    only_ckpt = sorted(set(classes) - set(data.class_names))
    only_data = sorted(set(data.class_names) - set(classes))
    raise ModelError(
        f"the teacher checkpoint's classes do not match the data's: only in the checkpoint {only_ckpt[:8]}, "
        f"only in the data {only_data[:8]} ({len(classes)} vs {len(data.class_names)} classes)",
        hint="name the class folders as the teacher was trained (or fix the class list recorded with the "
        "checkpoint: its sidecar JSON or metadata)",
    )


def load_run_data(config: Config, verify: bool = True) -> tuple[Data, list[str]]:
    """The run's data under the resolved contract, in the teacher's class order, with notes for people.
    ``verify``: where the contract is partly guessed, read the teacher under the plausible ones and
    take the most accurate (models/contract_check.py)."""
    contract = resolve_contract(config)

    def load(prep: Preprocess) -> Data:
        return order_classes(load_data(config.data, prep), contract.classes)[0]

    data, note = order_classes(load_data(config.data, contract.preprocess), contract.classes)
    notes = [note] if note else []
    ckpt = teacher_checkpoint(config)
    if verify and ckpt is not None and config.teacher.train is None:
        from edgekd.engines.data.contract_check import guessed_fields, verify_contract
        from edgekd.engines.models.checkpoint import load_weights

        if guessed_fields(data.preprocess):
            t = config.teacher
            teacher = build_model(t.model, data.num_classes, t.kwargs, what="teacher.model")
            try:
                load_weights(teacher, ckpt, num_classes=data.num_classes, what="teacher checkpoint")
            except ModelError:  # the teacher stage says what is wrong with it, with its own fix
                return data, notes
            data, more, _ = verify_contract(teacher, data, load)
            notes += more
    return data, notes


def input_sources(data: Data) -> str:
    """Where the contract came from, compactly: ``size: config; mean, std: timm pretrained_cfg of resnet18``."""
    by_source: dict[str, list[str]] = {}
    for k, src in data.preprocess.sources.items():
        by_source.setdefault(src, []).append(k)
    return "; ".join(f"{', '.join(ks)}: {src}" for src, ks in by_source.items())
