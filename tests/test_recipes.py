"""Training recipes by family: a transformer gets AdamW, warm-up, smoothing and clipping where the
config leaves them open; what the user wrote is kept; a ResNet's settings do not change."""

from __future__ import annotations

import timm
import torch

from edgekd.core.config import Config, DataConfig, TeacherTrainConfig, TrainConfig
from edgekd.engines.data.bundle import load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.train.recipes import fitted
from edgekd.engines.train.trainer import train

VIT = {"img_size": 16, "patch_size": 4, "depth": 2, "embed_dim": 64, "num_heads": 2}


def _vit(size: int = 16) -> torch.nn.Module:
    return build_model("vit_tiny_patch16_224", 10, {**VIT, "img_size": size})


def test_a_vit_gets_the_adamw_recipe_where_the_config_is_silent() -> None:
    cfg, record = fitted(TeacherTrainConfig(epochs=20), _vit())
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.weight_decay) == ("adamw", 0.001, 0.05)
    assert (cfg.schedule.warmup_epochs, cfg.grad_clip) == (2.0, 1.0)
    assert cfg.loss[0].params.label_smoothing == 0.1
    assert record["name"] == "adamw" and record["family"] == "vision transformer"
    assert record["changed"] == {"optimizer": "adamw", "lr": 0.001, "weight_decay": 0.05, "warmup_epochs": 2.0,
                                 "grad_clip": 1.0, "label_smoothing": 0.1}


def test_what_the_user_wrote_wins_and_a_resnet_is_left_as_written() -> None:
    written = TeacherTrainConfig.model_validate({"epochs": 10, "optimizer": {"name": "sgd", "lr": 0.1},
                                                 "schedule": {"warmup_epochs": 0}, "grad_clip": 5.0,
                                                 "loss": [{"name": "ce"}]})
    cfg, record = fitted(written, _vit())
    assert cfg == written and record["changed"] == {}
    cfg, record = fitted(TeacherTrainConfig.model_validate({"recipe": "sgd"}), _vit())
    assert cfg.optimizer.name == "sgd" and record == {"name": "sgd", "changed": {}}
    resnet = timm.create_model("resnet18", num_classes=10)
    plain = TeacherTrainConfig()
    assert fitted(plain, resnet)[0] is plain
    forced, _ = fitted(TeacherTrainConfig.model_validate({"recipe": "adamw"}), resnet)
    assert forced.optimizer.name == "adamw"


def test_the_stages_own_rates_keep_their_ratio_under_adamw() -> None:
    """prune's fine-tune (SGD 0.01) and QAT (SGD 5e-4, no weight decay) keep their relation to training."""
    c = Config.model_validate({"data": {"source": "digits"}, "teacher": {"model": "resnet18"}})
    finetune, _ = fitted(c.prune.finetune, _vit())
    qat, _ = fitted(c.quantize.train, _vit())
    assert (finetune.optimizer.name, round(finetune.optimizer.lr, 8)) == ("adamw", 2e-4)
    assert (qat.optimizer.name, round(qat.optimizer.lr, 8), qat.optimizer.weight_decay) == ("adamw", 1e-5, 0.0)
    kd, _ = fitted(TrainConfig(), _vit())
    assert kd.loss[0].name == "kl"  # the KD term is not a cross-entropy: no smoothing is added to it


def test_a_vit_trained_with_its_recipe_learns_where_the_resnet_recipe_stalls() -> None:
    data = load_data(DataConfig(source="digits", image_size=16))
    acc = {}
    for recipe in ("adamw", "sgd"):
        torch.manual_seed(0)
        cfg = TeacherTrainConfig.model_validate({"epochs": 6, "batch_size": 64, "recipe": recipe})
        acc[recipe] = train(_vit(), data, cfg, seed=0).best_accuracy
    assert acc["adamw"] >= acc["sgd"] + 8, acc
