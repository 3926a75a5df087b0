"""OFA-KD across families: the loss is the paper's, its projectors train with the student and
stay out of what is saved, and the trainer taps stages only when a term asks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn

import edgekd.engines.train.trainer as trainer_mod
from edgekd.core.config import DataConfig, LossTerm, TrainConfig
from edgekd.engines.data import load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.models.checkpoint import read_state_dict
from edgekd.engines.models.features import stage_layers
from edgekd.engines.train.losses import LossInputs, build_loss_terms
from edgekd.engines.train.ofa import OFADistiller, ofa_loss

VIT = ("vit_tiny_patch16_224", {"img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 4, "num_heads": 2,
                                "mlp_ratio": 2.0})
RESNET = ("resnet18", {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]})


@pytest.fixture(scope="module")
def shapes16():
    return load_data(DataConfig(source="synthetic", image_size=16, num_classes=4, train_size=256, val_size=64,
                                difficulty=0.2))


def _build(spec: tuple[str, dict]) -> nn.Module:
    return build_model(spec[0], 4, spec[1])


def _ofa(**params) -> OFADistiller:
    (_, term), = build_loss_terms([LossTerm(name="ofa", **params)])
    return term  # type: ignore[return-value]


def test_the_loss_is_the_papers_target_enhanced_kd() -> None:
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    log_ps, pt = s.log_softmax(1), t.softmax(1)
    # ε = 1: Hinton's soft cross-entropy plus cross-entropy on the label
    soft = -(pt * log_ps).sum(1).mean()
    hard = nn.functional.cross_entropy(s, y)
    assert ofa_loss(s, t, y, 1.0).item() == pytest.approx((soft + hard).item(), rel=1e-5)
    # ε = 1.5, one sample written out term by term
    c = int(y[0])
    manual = -(1 + pt[0, c]) ** 1.5 * log_ps[0, c] - sum(pt[0, k] * log_ps[0, k] for k in range(5) if k != c)
    assert ofa_loss(s[:1], t[:1], y[:1], 1.5).item() == pytest.approx(manual.item(), rel=1e-5)
    # a larger ε weighs the label more: the loss grows where the student doubts the label
    assert ofa_loss(s, t, y, 2.0) > ofa_loss(s, t, y, 1.0)


def test_bad_parameters_are_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match=r"eps must be between 1 and 3: below 1 it weakens the label"):
        LossTerm(name="ofa", eps=0.5)
    with pytest.raises(ValidationError, match=r"eps must be between 1 and 3"):
        TrainConfig(loss=[{"name": "ofa", "eps": 8}])
    with pytest.raises(ValidationError, match=r"did you mean 'eps'"):
        LossTerm(name="ofa", epsilon=1.5)
    assert _ofa(eps=1.5, temperature=2.0, stages=3).p.stages == 3


def test_stages_are_cnn_stages_or_evenly_spaced_vit_blocks() -> None:
    assert stage_layers(_build(RESNET), 16) == ["layer1", "layer2", "layer3", "layer4"]
    deep = build_model("vit_tiny_patch16_224", 4, {**VIT[1], "depth": 12})
    assert stage_layers(deep, 16) == ["blocks.2", "blocks.5", "blocks.8", "blocks.11"]
    plain = nn.Sequential(  # no timm feature_info: the outermost module per feature-map size
        nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU()), nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    assert stage_layers(plain, 16, count=2) == ["0", "1"]


def test_projectors_get_gradients_and_join_the_optimizer(shapes16) -> None:
    student, teacher = _build(RESNET), _build(VIT).eval()
    cfg = TrainConfig(loss=[LossTerm(name="ofa")])
    computer = trainer_mod.LossComputer(student, cfg, teacher, 16, "test")
    try:
        (_, term), = computer.terms
        assert len(term.projectors) == 4 and computer.stages.layers == ["layer1", "layer2", "layer3", "layer4"]
        assert not computer.needs_features  # the last-feature taps (and their teacher pass) stay off
        x, y = shapes16.normalize(shapes16.train_x[:16]), shapes16.train_y[:16]
        computer(x, y).backward()
    finally:
        computer.close()
    own = computer.parameters()
    assert own and {id(p) for p in own} == {id(p) for p in term.projectors.parameters()}
    for proj in term.projectors:
        grads = [p.grad for p in proj.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is not None for p in student.layer1.parameters())  # the branch reaches the early stage
    opt = trainer_mod._optimizer(student, cfg, own)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert {id(p) for p in own} <= in_opt and {id(p) for p in student.parameters()} <= in_opt


@pytest.mark.parametrize("teacher_spec, student_spec", [(VIT, RESNET), (RESNET, VIT)],
                         ids=["vit-to-resnet", "resnet-to-vit"])
def test_ofa_trains_a_student_of_the_other_family(shapes16, teacher_spec, student_spec, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    made, cached = [], []

    class Recording(trainer_mod.LossComputer):  # keeps itself and its projectors' initial weights
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            self.initial = [p.detach().clone() for p in self.parameters()]
            made.append(self)

    monkeypatch.setattr(trainer_mod, "LossComputer", Recording)
    real_cache = trainer_mod.teacher_logits
    monkeypatch.setattr(trainer_mod, "teacher_logits", lambda *a, **k: cached.append(1) or real_cache(*a, **k))
    torch.manual_seed(0)
    teacher = _build(teacher_spec).eval()
    student = _build(student_spec)
    cfg = TrainConfig(epochs=4, batch_size=32, augment={"shift": 0}, loss=[LossTerm(name="ofa")])
    r = trainer_mod.train(student, shapes16, cfg, teacher=teacher, best_path=tmp_path / "best.safetensors")
    losses = [h["train_loss"] for h in r.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    assert cached == [1]  # OFA reads only the teacher's logits: computed once, as for kl
    (computer,) = made
    now = computer.parameters()
    assert len(now) == len(computer.initial) > 0
    assert all(not torch.equal(a, b.detach()) for a, b in zip(computer.initial, now, strict=True))  # all stepped
    saved = read_state_dict(tmp_path / "best.safetensors")
    assert set(saved) == set(student.state_dict())  # the student alone: no projector weights
    assert not any("projector" in k for k in saved)
    _build(student_spec).load_state_dict(saved)  # strict: loads as the plain architecture


def test_terms_without_stages_open_no_stage_tap(shapes16) -> None:
    student, teacher = _build(RESNET), _build(VIT)
    computer = trainer_mod.LossComputer(student, TrainConfig(loss=[LossTerm(name="kl")]), teacher, 16, "test")
    assert computer.stages is None and computer.parameters() == []
    z = computer(shapes16.normalize(shapes16.train_x[:8]), shapes16.train_y[:8])
    assert torch.isfinite(z)
    inp = LossInputs(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match="build"):
        _ofa()(inp)


DDP_SCRIPT = '''
import torch, torch.distributed as tdist
import edgekd.engines.train.trainer as T
from edgekd.core import dist
from edgekd.core.config import DataConfig, LossTerm, TrainConfig
from edgekd.engines.data import load_data
from edgekd.engines.models.build import build_model

w = dist.init(torch.device("cpu"))
made = []
class Recording(T.LossComputer):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        made.append(self)
T.LossComputer = Recording
data = load_data(DataConfig(source="synthetic", image_size=16, num_classes=4, train_size=256, val_size=64))
torch.manual_seed(w.rank)  # the teacher differs per rank, harmless here; the projectors must not
teacher = build_model("vit_tiny_patch16_224", 4, {"img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 4,
                                                  "num_heads": 2}).eval()
student = build_model("resnet18", 4, {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]})
T.train(student, data, TrainConfig(epochs=2, batch_size=32, augment={"shift": 0}, loss=[LossTerm(name="ofa")]),
        teacher=teacher)
flat = torch.cat([p.detach().reshape(-1) for p in made[0].parameters()])
every = [torch.zeros_like(flat) for _ in range(w.size)]
tdist.all_gather(every, flat)
if w.main:
    print("projector difference", float((every[0] - every[1]).abs().max()))
tdist.destroy_process_group()
'''


@pytest.mark.slow
def test_projectors_stay_equal_across_ranks_under_torchrun(tmp_path: Path) -> None:
    """Each rank sees its own half of every batch: without the all-reduce the projectors drift apart
    (max difference ~1 after 2 epochs, checked by disabling it); with it they stay identical."""
    import os
    import subprocess
    import sys

    script = tmp_path / "ofa_ddp.py"
    script.write_text(DDP_SCRIPT)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(root), os.environ.get(
        "PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "projector difference 0.0" in r.stdout, r.stdout
