"""The teacher: loaded safely from the user's checkpoint, or trained on the data first."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from edgekd.core import dist
from edgekd.core.config import TeacherConfig
from edgekd.core.errors import ConfigError, ModelError
from edgekd.engines.data.bundle import Data
from edgekd.engines.data.input_contract import input_sources
from edgekd.engines.models.artifact import ModelSpec, save_model
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import load_weights, read_record, save_format, save_state_dict
from edgekd.engines.models.names import display_name
from edgekd.engines.models.stats import model_stats
from edgekd.engines.reporting.sections import Section, trained_model_section
from edgekd.engines.train.evaluate import evaluate
from edgekd.engines.train.trainer import train
from edgekd.stages.base import Stage, StageResult
from edgekd.stages.context import RunContext
from edgekd.stages.outputs import TeacherOutput

log = logging.getLogger(__name__)


class TeacherStage(Stage):
    name = "teacher"

    def settings(self, ctx: RunContext) -> Any:
        t = ctx.config.teacher
        ckpt = t.checkpoint
        from edgekd.core.rundir import sha256_file

        sha = sha256_file(ckpt) if ckpt and Path(ckpt).exists() else None
        done = ctx.run.manifest.get("stages", {}).get("teacher", {})
        if sha is not None and done.get("metrics", {}).get("checkpoint_written_sha256") == sha:
            sha = None  # the file this run trained into (train-if-missing): as the run started, not a change
        return {
            "teacher": t.model_dump(mode="json"),
            "checkpoint_sha256": sha,
            "data": ctx.data.fingerprint(),
            "seed": ctx.config.seed,
        }

    def section(self, result: StageResult) -> Section:
        return trained_model_section("teacher", "teacher", result.output.as_dict())

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.teacher
        data = ctx.data
        ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
        train_into = ckpt is not None and cfg.train is not None and not ckpt.exists()  # train-if-missing
        fmt = save_format(ckpt, "teacher.checkpoint") if train_into else None  # refused before training, not after
        if train_into:
            _check_writable(ckpt)  # type: ignore[arg-type]
        torch.manual_seed(ctx.config.seed)  # the same initial weights on every run of this config
        model = build_model(cfg.model, data.num_classes, cfg.kwargs, what="teacher.model")
        metrics: dict[str, Any] = {"model": cfg.model, "kwargs": cfg.kwargs}
        name = escape(display_name(cfg.model, cfg.kwargs))
        if ckpt is not None and not train_into:
            if not ckpt.exists():
                raise ModelError(f"teacher checkpoint not found: {ckpt}",
                                 hint="check teacher.checkpoint (a relative path starts from the current folder), "
                                 "or add teacher.train: {epochs: N} to train the teacher and save it there")
            load_weights(model, ckpt, num_classes=data.num_classes, what="teacher checkpoint")
            model.to(ctx.device)
            acc = evaluate(model, ctx.device_data, ctx.device)
            metrics.update(source=f"checkpoint {ckpt}", accuracy=round(acc, 3))
            check_loaded_teacher(acc, data, cfg, ckpt, read_record(ckpt).get("accuracy"))  # type: ignore[arg-type]
        elif cfg.train is not None:
            what = f"{name} for {cfg.train.epochs} epochs"
            ctx.reporter.line(f"[cyan]teacher[/]: training {what}" if ckpt is None else
                              f"[cyan]teacher[/]: checkpoint {escape(str(ckpt))} not found, training it "
                              f"(teacher.train: {what}) and saving it there ({fmt})")
            result = train(model, ctx.device_data, cfg.train, device=ctx.device, seed=ctx.config.seed,
                           reporter=ctx.reporter, label=f"teacher {display_name(cfg.model, cfg.kwargs)}", best_path=out / "best.safetensors")
            metrics.update(source="trained", **result.metrics())
            if ckpt is not None and dist.world().main:  # train-if-missing: keep the weights where the config
                save_state_dict(model.state_dict(), ckpt, teacher_record(data, metrics["accuracy"]))  # points
                log.info("teacher weights saved to %s", ckpt)
                from edgekd.core.rundir import sha256_file

                metrics["checkpoint_written_sha256"] = sha256_file(ckpt)  # a resume reads it as unchanged
        else:
            raise ConfigError(
                "teacher: no checkpoint and no train: settings, but later stages need a trained teacher",
                hint="set teacher.checkpoint: <file> (safetensors or a weights-only state_dict), "
                "or teacher.train: {epochs: 10}",
            )
        model.eval()
        metrics.update(model_stats(model, data.image_size))
        if metrics["accuracy"] < chance_floor(data.num_classes, data.num_val):  # trained here: its budget, not its input
            log.warning("the teacher trained here reads %.2f%%, near chance: give it more epochs or a better "
                        "learning rate (teacher.train)", metrics["accuracy"])
        metrics["preprocess"] = data.preprocessing()
        spec = ModelSpec(cfg.model, data.num_classes, dict(cfg.kwargs), data.preprocessing(), role="teacher",
                         info={"accuracy": metrics["accuracy"]})
        folder = save_model(model, spec, out / "model")
        (out / "best.safetensors").unlink(missing_ok=True)
        ctx.reporter.line(f"[green]teacher[/]: {name} {metrics['accuracy']:.2f}% ({escape(metrics['source'])})")
        return StageResult(TeacherOutput(**metrics), {"model:teacher": folder})


def teacher_record(data: Data, accuracy: float) -> dict[str, str]:
    """What a checkpoint edgekd writes says about itself: class order, input contract, accuracy."""
    return {"classes": json.dumps(data.class_names), "preprocess": json.dumps(data.preprocessing()),
            "accuracy": str(round(accuracy, 3)), "format": "edgekd-teacher/1"}


def chance_floor(num_classes: int, n_val: int) -> float:
    """Accuracy (%) a teacher must beat not to count as near chance: chance plus a tenth of the
    way to 100%, or plus three binomial standard errors on this many images, whichever is more
    (10 classes: 19%; 2 classes: 55%, or more on a small validation set)."""
    p = 1.0 / num_classes
    return 100.0 * (p + max((1 - p) / 10, 3 * math.sqrt(p * (1 - p) / max(1, n_val))))


def _check_writable(ckpt: Path) -> None:
    """Where the trained teacher will be saved must take a file: said before the training, not after."""
    folder = ckpt.parent if str(ckpt.parent) else Path(".")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ConfigError(f"teacher.checkpoint {ckpt}: cannot write there ({existing} is "
                          f"{'not a folder' if not existing.is_dir() else 'not writable'}), so the teacher "
                          "trained now could not be kept", hint="point teacher.checkpoint to a writable folder")


def check_loaded_teacher(acc: float, data: Data, cfg: TeacherConfig, ckpt: Path,
                         recorded: float | None = None) -> None:
    """Stop before anything is distilled from a teacher that reads near chance or below what it reached.

    ``recorded``: the accuracy edgekd measured when it trained this checkpoint (train-if-missing).
    A weak teacher that reads what it reached then is weak, not misread: a warning, as when it was
    trained, so edgekd never refuses a checkpoint it wrote itself.
    """
    floor = chance_floor(data.num_classes, data.num_val)
    if cfg.expected_accuracy is not None and acc < cfg.expected_accuracy - cfg.accuracy_tolerance:
        why = (f"below teacher.expected_accuracy {cfg.expected_accuracy:g}% "
               f"(tolerance {cfg.accuracy_tolerance:g} points)")
    elif acc < floor and recorded is not None and acc >= recorded - cfg.accuracy_tolerance:
        log.warning("the teacher checkpoint %s reads %.2f%%, near chance, as when edgekd trained it (%.2f%%): "
                    "give it more epochs (teacher.train) and delete the file to train it again", ckpt, acc, recorded)
        return
    elif acc < floor:
        why = f"near chance ({100 / data.num_classes:.1f}% for {data.num_classes} classes; needs > {floor:.1f}%)"
    else:
        return
    raise ModelError(
        f"the teacher checkpoint {ckpt} reads {acc:.2f}% on {data.num_val} validation images, {why}: this run "
        f"is not feeding it what it was trained on. Input now: {data.preprocess.describe()} ({input_sources(data)})",
        hint="check, most likely first: normalisation (data.preprocess.mean/std: imagenet, dataset or [r, g, b], "
        "as in the training script's Normalize); class order (folders sort by name; record the script's classes "
        "with the checkpoint: a sidecar JSON {\"classes\": [...]} or class_to_idx); resolution and crop "
        "(data.image_size, data.preprocess.resize: crop, crop_fraction, interpolation); channels (RGB/BGR)",
    )
