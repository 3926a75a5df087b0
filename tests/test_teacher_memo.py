"""The teacher's logits computed in one KD run are reused by the next run on the same batches,
and change nothing it learns."""

from __future__ import annotations

import copy

import torch
from conftest import STUDENT, TEACHER

from edgekd.core.config import DataConfig, TrainConfig
from edgekd.engines.data import load_data
from edgekd.engines.models.build import build_model
from edgekd.engines.train.teacher_memo import TeacherMemo
from edgekd.engines.train.trainer import train


def test_an_entry_serves_only_the_batch_it_was_computed_on() -> None:
    memo = TeacherMemo()
    idx, xb, logits = torch.arange(4), torch.randn(4, 3, 8, 8), torch.randn(4, 10)
    memo.put(1, 0, idx, xb, logits)
    assert torch.equal(memo.get(1, 0, idx, xb), logits)
    assert memo.get(1, 0, idx, xb + 1e-3) is None  # the same images, augmented differently
    assert memo.get(1, 0, idx.flip(0), xb) is None  # other images
    assert memo.get(2, 0, idx, xb) is None  # another epoch
    assert (memo.hits, memo.misses) == (1, 3)
    small = TeacherMemo(cap_bytes=200)
    small.put(1, 0, idx, xb, logits)  # 160 + 32 bytes: kept
    small.put(1, 1, idx, xb, logits)  # past the cap: not kept
    assert list(small.entries) == [(1, 0)]


def test_a_second_kd_run_reuses_the_teachers_logits_and_learns_the_same() -> None:
    data = load_data(DataConfig(source="digits", image_size=16))
    torch.manual_seed(0)
    teacher = build_model(TEACHER["model"], 10, TEACHER["kwargs"]).eval()
    cfg = TrainConfig(epochs=2, batch_size=64, loss=[{"name": "kl"}], augment={"shift": 2},
                      max_steps_per_epoch=6)
    torch.manual_seed(1)
    start = build_model(STUDENT["model"], 10, STUDENT["kwargs"])
    runs = {}
    memo = TeacherMemo()
    for name, m in (("first", memo), ("second", memo), ("alone", None)):
        student = copy.deepcopy(start)
        runs[name] = (train(student, data, cfg, teacher=teacher, seed=3, memo=m), student)
        if name == "first":
            assert (memo.hits, memo.misses) == (0, 12)  # 2 epochs of 6 steps, all computed
    assert (memo.hits, memo.misses) == (12, 12)  # the second run computed none
    for a, b in zip(runs["second"][1].state_dict().values(), runs["alone"][1].state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = TrainConfig(**{**cfg.model_dump(), "augment": {"shift": 3}})  # other batches: nothing reused
    train(copy.deepcopy(start), data, other, teacher=teacher, seed=3, memo=memo)
    assert memo.hits == 12
