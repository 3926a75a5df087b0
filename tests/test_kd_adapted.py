"""After distill shipped the plain student (KD did not pay), later fine-tunes lower the KD weight."""

from __future__ import annotations

from edgekd.core.config import Config, PruneConfig, QuantizeConfig
from edgekd.engines.train.policy import ALPHA_AFTER_PLAIN_WON, kd_adapted


def _alphas(cfg) -> list[float | None]:
    return [t.params.alpha if t.name == "kl" else None for t in cfg.loss]


def test_default_kd_losses_get_a_lower_alpha_after_plain_won() -> None:
    for train in (PruneConfig().finetune, QuantizeConfig(train={"epochs": 1}).train):
        assert _alphas(train) == [0.9]
        adapted, why = kd_adapted("plain", train)
        assert _alphas(adapted) == [ALPHA_AFTER_PLAIN_WON] and "KD did not pay" in why
        assert adapted.epochs == train.epochs and adapted.optimizer == train.optimizer  # only the loss changes
        assert _alphas(train) == [0.9]  # the configured section is not changed in place


def test_kd_weight_kept_when_kd_won_or_the_user_wrote_the_loss() -> None:
    train = PruneConfig().finetune
    assert kd_adapted("kd", train) == (train, None)
    assert kd_adapted(None, train) == (train, None)  # no distill stage in this run
    written = Config.model_validate({"name": "t", "data": {"source": "digits"}, "teacher": {"model": "resnet18"},
                                     "prune": {"finetune": {"loss": [{"name": "kl", "alpha": 0.9}]}}}).prune.finetune
    assert kd_adapted("plain", written) == (written, None)
    plain = PruneConfig(finetune={"loss": [{"name": "ce"}]}).finetune
    assert kd_adapted("plain", plain) == (plain, None)
