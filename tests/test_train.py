"""The trainer improves accuracy, the losses do what their papers say, NaN stops the run."""

from __future__ import annotations

import pytest
import torch

from edgekd.core.config import DataConfig, LossTerm, TrainConfig
from edgekd.core.errors import ConfigError, TrainingError
from edgekd.engines.data import load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.train.evaluate import evaluate
from edgekd.engines.train.losses import LossInputs, build_loss_terms
from edgekd.engines.train.similarity import matrix_distance, relation_matrix
from edgekd.engines.train.trainer import train

KW = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}


@pytest.fixture(scope="module")
def digits16():
    return load_data(DataConfig(source="digits", image_size=16))


def test_training_improves_accuracy(digits16) -> None:
    model = build_model("resnet18", 10, KW)
    before = evaluate(model, digits16, torch.device("cpu"))
    result = train(model, digits16, TrainConfig(epochs=8, batch_size=64, loss=[LossTerm(name="ce")]))
    after = evaluate(model, digits16, torch.device("cpu"))
    assert before < 30 and after > 85, (before, after)
    assert result.best_accuracy == pytest.approx(after, abs=1e-6)  # the model ends on its best epoch
    assert len(result.history) == 8


def test_distillation_needs_a_teacher(digits16) -> None:
    with pytest.raises(ConfigError, match="needs a teacher"):
        train(build_model("resnet18", 10, KW), digits16, TrainConfig(epochs=1))


def test_nan_loss_stops_with_clear_error(digits16) -> None:
    cfg = TrainConfig(epochs=1, batch_size=64, loss=[LossTerm(name="ce")], optimizer={"lr": 1e30}, grad_clip=None)
    with pytest.raises(TrainingError, match=r"(?s)loss became (nan|inf).*lower the learning rate"):
        train(build_model("resnet18", 10, KW), digits16, cfg)


def test_distillation_with_relation_runs(digits16) -> None:
    teacher = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]})
    train(teacher, digits16, TrainConfig(epochs=1, batch_size=64, loss=[LossTerm(name="ce")]))
    student = build_model("mobilenetv3_small_050", 10)
    cfg = TrainConfig(epochs=1, batch_size=64, loss=[LossTerm(name="kl"), LossTerm(name="relation")])
    r = train(student, digits16, cfg, teacher=teacher)
    assert r.history[0]["train_loss"] > 0


def _terms(*specs):
    return build_loss_terms([LossTerm(**s) for s in specs])


def test_kl_is_zero_for_identical_logits_and_grows_with_disagreement() -> None:
    (_, kl), = _terms({"name": "kl", "alpha": 1.0, "temperature": 4})
    z = torch.randn(16, 10)
    y = torch.randint(0, 10, (16,))
    assert kl(LossInputs(z, y, z.clone())).item() == pytest.approx(0.0, abs=1e-6)
    assert kl(LossInputs(z, y, -z)).item() > 0.1
    (_, mixed), = _terms({"name": "kl", "alpha": 0.0})
    ce = torch.nn.functional.cross_entropy(z, y)
    assert mixed(LossInputs(z, y, -z)).item() == pytest.approx(ce.item(), rel=1e-5)  # alpha 0 = labels only


def test_relation_loss_ignores_channel_count_and_scale() -> None:
    (_, rel), = _terms({"name": "relation"})
    f = torch.randn(8, 16, 2, 2)
    y = torch.zeros(8, dtype=torch.long)
    # same sample relations, different width (a copy of the channels) and scale: zero loss
    g = torch.cat([f, f], dim=1) * 3.0
    assert rel(LossInputs(torch.zeros(8, 10), y, torch.zeros(8, 10), f, g)).item() == pytest.approx(0, abs=1e-5)
    assert rel(LossInputs(torch.zeros(8, 10), y, torch.zeros(8, 10), f, torch.randn(8, 32, 2, 2))).item() > 0


def test_relation_matrix_is_row_normalised_and_permutation_equivariant() -> None:
    f = torch.randn(6, 5, 3, 3)
    g = relation_matrix(f)
    assert torch.allclose(g.norm(dim=1), torch.ones(6), atol=1e-5)
    p = torch.randperm(6)
    assert torch.allclose(relation_matrix(f[p]), g[p][:, p], atol=1e-5)
    assert matrix_distance(g, g).item() == 0


def test_cached_teacher_logits_match_per_batch_teacher(digits16, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without augmentation the teacher's logits are computed once; training is unchanged by it."""
    import edgekd.engines.train.trainer as trainer_mod

    teacher = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}).eval()
    cfg = TrainConfig(epochs=2, batch_size=64, augment={"shift": 0}, loss=[LossTerm(name="kl")])
    calls = []
    real = trainer_mod.teacher_logits
    monkeypatch.setattr(trainer_mod, "teacher_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    a = train(build_model("resnet18", 10, KW), digits16, cfg, teacher=teacher)
    assert calls == [1]
    monkeypatch.setattr(trainer_mod, "teacher_logits", lambda *a, **k: None)  # forces the per-batch teacher
    torch.manual_seed(0)  # the same initial student
    b = train(build_model("resnet18", 10, KW), digits16, cfg, teacher=teacher)
    assert [h["train_loss"] for h in a.history] == pytest.approx([h["train_loss"] for h in b.history], rel=1e-4)
