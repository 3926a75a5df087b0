"""The teacher: loaded safely from the user's checkpoint, or trained on the data first."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from edgekd.core.errors import ConfigError
from edgekd.models.artifact import ModelSpec, save_model
from edgekd.models.build import build_model
from edgekd.models.checkpoint import load_weights, save_state_dict
from edgekd.models.stats import model_stats
from edgekd.stages.base import RunContext, Stage, StageResult
from edgekd.train.evaluate import evaluate
from edgekd.train.trainer import train

log = logging.getLogger(__name__)


class TeacherStage(Stage):
    name = "teacher"

    def settings(self, ctx: RunContext) -> Any:
        t = ctx.config.teacher
        ckpt = t.checkpoint
        from edgekd.core.rundir import sha256_file

        return {
            "teacher": t.model_dump(mode="json"),
            "checkpoint_sha256": sha256_file(ckpt) if ckpt and Path(ckpt).exists() else None,
            "data": ctx.data.fingerprint(),
            "seed": ctx.config.seed,
        }

    def run(self, ctx: RunContext, out: Path) -> StageResult:
        cfg = ctx.config.teacher
        data = ctx.data
        torch.manual_seed(ctx.config.seed)  # the same initial weights on every run of this config
        model = build_model(cfg.model, data.num_classes, cfg.kwargs)
        ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
        metrics: dict[str, Any] = {"model": cfg.model}
        if ckpt is not None and (ckpt.exists() or cfg.train is None):
            load_weights(model, ckpt, num_classes=data.num_classes, what="teacher checkpoint")
            model.to(ctx.device)
            metrics.update(source=f"checkpoint {ckpt}", accuracy=round(evaluate(model, ctx.device_data, ctx.device), 3))
        elif cfg.train is not None:
            ctx.reporter.line(f"[cyan]teacher[/]: training {cfg.model} for {cfg.train.epochs} epochs")
            result = train(model, ctx.device_data, cfg.train, device=ctx.device, seed=ctx.config.seed,
                           reporter=ctx.reporter, label=f"teacher {cfg.model}", best_path=out / "best.safetensors")
            metrics.update(source="trained", **result.metrics())
            if ckpt is not None:  # train-if-missing: keep the weights where the config points, for reuse
                save_state_dict(model.state_dict(), ckpt)
                log.info("teacher weights saved to %s", ckpt)
        else:
            raise ConfigError(
                "teacher: no checkpoint and no train: settings, but later stages need a trained teacher",
                hint="set teacher.checkpoint: <file> (safetensors or a weights-only state_dict), "
                "or teacher.train: {epochs: 10}",
            )
        model.eval()
        metrics.update(model_stats(model, data.image_size))
        if metrics["accuracy"] < 100.0 / data.num_classes + 1.0:
            log.warning("teacher accuracy %.2f%% is near chance: check the checkpoint and data", metrics["accuracy"])
        spec = ModelSpec(cfg.model, data.num_classes, dict(cfg.kwargs), data.preprocessing(), role="teacher",
                         info={"accuracy": metrics["accuracy"]})
        folder = save_model(model, spec, out / "model")
        (out / "best.safetensors").unlink(missing_ok=True)
        ctx.reporter.line(f"[green]teacher[/]: {cfg.model} {metrics['accuracy']:.2f}% ({metrics['source']})")
        return StageResult(metrics, {"model:teacher": folder})
