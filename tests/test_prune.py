"""Structured pruning: real channel removal on timm families, exact reload, ONNX parity, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import edgekd
from edgekd.core.errors import PruningError
from edgekd.engines.exporters.onnx_io import export_onnx
from edgekd.engines.models.artifact import ModelSpec, load_model, save_model
from edgekd.engines.models.build import build_model
from edgekd.engines.models.stats import count_macs
from edgekd.engines.pruning.importance import Magnitude, MagnitudeParams
from edgekd.engines.pruning.structured import ChannelPruner
from edgekd.engines.runtimes.onnxruntime import OnnxRuntime

FAMILIES = [
    ("resnet18", {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}, 16),
    ("mobilenetv3_small_050", {}, 32),
    ("efficientnet_b0", {}, 32),
    # transformers and modern CNNs: head dimensions, MLP widths and (ViT) the embedding width
    ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 4, "depth": 2, "embed_dim": 64, "num_heads": 2}, 32),
    ("swin_tiny_patch4_window7_224", {"img_size": 32, "patch_size": 2, "window_size": 4, "embed_dim": 24,
                                      "depths": (1, 1), "num_heads": (1, 2)}, 32),
    ("convnext_atto", {"dims": (16, 32, 64, 128), "depths": (1, 1, 1, 1)}, 32),
    ("mobilevit_xxs", {}, 32),
]


@pytest.mark.parametrize(("name", "kwargs", "size"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_prune_family_to_half_the_macs(name: str, kwargs: dict, size: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(name, 10, kwargs).eval()
    x = torch.randn(2, 3, size, size)
    base = count_macs(model, size)
    pruner = ChannelPruner(model, x[:1], importance=Magnitude(MagnitudeParams()).build(), global_pruning=False,
                           ignored=[], skip_unsupported=False, round_to=None)
    assert pruner.step_until(lambda: count_macs(model, size) <= base / 2)
    macs = count_macs(model, size)
    assert 1.95 <= base / macs <= 2.6  # reached the requested ratio, not far past it
    y = model(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    assert model.get_classifier().out_features == 10  # the classifier is left alone
    # saved as base architecture + pruning history: reloads with the same shapes and outputs
    spec = ModelSpec(name, 10, kwargs, {"size": [size, size]}, pruning_history=pruner.history(), role="pruned")
    json.dumps(spec.pruning_history)  # plain data
    save_model(model, spec, tmp_path / "m")
    again, _ = load_model(tmp_path / "m")
    assert torch.allclose(model(x), again(x), atol=1e-5)
    # and exports to ONNX with parity
    path = export_onnx(again, x, tmp_path / "m.onnx", 17)
    out = OnnxRuntime().load(path, precision="fp32", threads=1).run(x.numpy())
    assert np.abs(out - model(x).detach().numpy()).max() < 1e-4


class Scale(nn.Module):
    """A per-channel scale held as a bare parameter: torch-pruning slices it correctly."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mix(nn.Module):
    """A channel-mixing matmul held as a bare parameter: torch-pruning slices it wrongly."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(c, 2 * c) / c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,cd->bdhw", x, self.w)


def _net(custom: nn.Module, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), custom,
                         nn.Conv2d(c_out, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _pruner(model, **kw):
    defaults = dict(importance=Magnitude(MagnitudeParams()).build(), global_pruning=False, ignored=[],
                    skip_unsupported=False, round_to=None)
    return ChannelPruner(model, torch.randn(1, 3, 8, 8), **{**defaults, **kw})


def _prune_some(model) -> None:
    base = count_macs(model, 8)
    return lambda: count_macs(model, 8) <= base * 0.8


def test_unsupported_layer_is_named_and_can_be_skipped() -> None:
    model = _net(Mix(16), 32)
    p = _pruner(model)
    with pytest.raises(PruningError, match=r"(?s)pruning failed at layer 3 \(Mix\).*ignored_layers: \['3'\]"):
        p.step_until(_prune_some(model))
    for kw in ({"skip_unsupported": True}, {"ignored": ["3"]}):  # either way of skipping it works
        model = _net(Mix(16), 32)
        assert _pruner(model, **kw).step_until(_prune_some(model))
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
        assert model[3].w.shape == (16, 32) and model[0].out_channels == 16  # it and its coupled channels kept
        assert model[6].out_channels < 32  # the rest was pruned


def test_custom_scale_layer_is_pruned_along() -> None:
    model = _net(Scale(16), 16)
    assert _pruner(model).step_until(_prune_some(model))
    assert model[3].gamma.shape[1] == model[0].out_channels < 16
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_unknown_ignored_layer_is_an_error() -> None:
    with pytest.raises(PruningError, match="no layer named 'layer9'"):
        _pruner(build_model("resnet18", 10), ignored=["layer9"])


def test_prune_stage_records_every_step(finished_run, tmp_path: Path) -> None:
    cfg, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    cfg = {**cfg, "output_dir": str(tmp_path), "stages": [*cfg["stages"], "prune"],
           "prune": {"flops_ratio": 1.6, "steps": 2, "finetune": {"epochs": 1}, "latency_check": False,
                     "round_to": 1}}  # about the steps: no timing, no channel rounding
    report = edgekd.prune(cfg, ["host"], quiet=True)  # runs the stage alone on the finished run's student
    assert report.stages["distill"]["resumed"]
    steps = report.pruning["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    base = report.pruning["base"]["macs"]
    assert base / steps[0]["macs"] < base / steps[1]["macs"]
    assert 1.55 <= base / steps[1]["macs"] <= 2.0
    assert all(0 <= s["accuracy"] <= 100 and "accuracy_after_pruning" in s for s in steps)
    assert report.model("pruned").macs == steps[-1]["macs"]


def test_taylor_importance_with_distillation_gradients() -> None:
    """Taylor importance: gradients of the distillation loss between micro-steps (the model is
    left in train mode by them; the shape check must still run on a batch of one)."""
    from edgekd.core.config import DataConfig, LossTerm, TrainConfig
    from edgekd.engines.data import load_data
    from edgekd.engines.pruning.importance import Taylor, TaylorParams
    from edgekd.engines.train.trainer import loss_gradients

    data = load_data(DataConfig(source="digits", image_size=16))
    teacher = build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128]}).eval()
    model = build_model("mobilenetv3_small_050", 10)
    cfg = TrainConfig(batch_size=16, loss=[LossTerm(name="kl")])
    base = count_macs(model, 16)
    pruner = ChannelPruner(model, torch.randn(1, 3, 16, 16), importance=Taylor(TaylorParams()).build(),
                           global_pruning=False, ignored=[], skip_unsupported=False, round_to=None,
                           gradient_fn=lambda m: loss_gradients(m, data, cfg, teacher=teacher, batches=1))
    assert pruner.step_until(lambda: count_macs(model, 16) <= base / 2)
    assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_pruned_channels_are_multiples_of_the_rounding() -> None:
    """round_to: every conv whose width changed keeps a multiple of it (untouched ones may not)."""
    torch.manual_seed(0)
    model = build_model("mobilenetv3_small_050", 10).eval()
    convs = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    base = count_macs(model, 32)
    pruner = ChannelPruner(model, torch.randn(1, 3, 32, 32), importance=Magnitude(MagnitudeParams()).build(),
                           global_pruning=False, ignored=[], skip_unsupported=False, round_to=16)
    assert pruner.step_until(lambda: count_macs(model, 32) <= base / 1.5)
    changed = {n: m.out_channels for n, m in model.named_modules()
               if isinstance(m, nn.Conv2d) and m.out_channels != convs[n]}
    assert changed and all(c % 16 == 0 for c in changed.values()), changed
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_step_verdict_noise_margins() -> None:
    from edgekd.engines.pruning.payoff import step_verdict

    def est(ms: float, kind: str) -> dict:
        return {"ms": ms, "kind": kind, "runtime": "x", "precision": "fp32", "target": "t"}

    assert not step_verdict({"host": est(1.0, "measured")}, {"host": est(0.96, "measured")}).pays  # within noise
    assert step_verdict({"host": est(1.0, "measured")}, {"host": est(0.9, "measured")}).pays
    assert step_verdict({"dev": est(1.0, "predicted")}, {"dev": est(0.98, "predicted")}).pays  # the roofline is exact
    mixed = step_verdict({"host": est(1.0, "measured"), "dev": est(1.0, "predicted")},
                         {"host": est(1.2, "measured"), "dev": est(0.5, "predicted")})
    assert not mixed.pays and mixed.slower == ["host"] and "slower on host" in mixed.reason


def _prune_run(finished_run, tmp_path: Path, prune: dict) -> dict:
    """The finished tiny run copied, with this prune section; its teacher timing is dropped
    (the tests time with a fake clock)."""
    cfg, _, run = finished_run
    shutil.copytree(run, tmp_path / "tiny")
    (tmp_path / "tiny" / "budgets.json").unlink(missing_ok=True)
    return {**cfg, "output_dir": str(tmp_path), "stages": [*cfg["stages"], "prune"],
            "prune": {"steps": 2, "finetune": {"epochs": 1}, **prune}}


def _fake_clock(monkeypatch: pytest.MonkeyPatch, ms, teacher_ms=None) -> None:
    """best_latency replaced: ``ms(model, size)`` milliseconds, predicted, for the prune stage;
    ``teacher_ms`` (default: the same) for the teacher's timing the budgets divide."""
    from edgekd.engines.budgets import resolve
    from edgekd.engines.latency.oracle import LatencyEstimate
    from edgekd.stages.prune import latency

    def clock(fn):
        def fake(model, profile, input_size, **_kw):
            return LatencyEstimate(float(fn(model, input_size)), "predicted", "fake", "fp32", profile.name)
        return fake

    monkeypatch.setattr(latency, "best_latency", clock(ms))
    monkeypatch.setattr(resolve, "best_latency", clock(teacher_ms or ms))


def _conv_widths(model: nn.Module) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def test_a_step_that_does_not_pay_is_undone(finished_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 1 is faster, step 2 is not (beyond the noise margin): step 2 is undone and the
    saved model is step 1's, with its pruning history, channels in multiples of the plan's rounding."""
    seq = iter([1.0, 0.8, 0.795])  # before, after step 1 (pays), after step 2 (under 1%: does not)
    _fake_clock(monkeypatch, lambda m, s: next(seq), teacher_ms=lambda m, s: 10.0)
    report = edgekd.prune(_prune_run(finished_run, tmp_path, {"flops_ratio": 1.6}), ["host"], quiet=True)
    steps, stop = report.pruning["steps"], report.pruning["stopped"]
    assert [s["step"] for s in steps] == [1] and steps[0]["latency"]["host"]["ms"] == 0.8
    assert (stop["step"], stop["steps_kept"]) == (2, 1) and "not faster" in stop["reason"]
    assert stop["latency_after"]["host"]["ms"] == 0.795
    model, spec = load_model(tmp_path / "tiny" / "prune" / "model")
    assert count_macs(model, 16) == steps[0]["macs"] == report.model("pruned").macs < report.pruning["base"]["macs"]
    assert spec.pruning_history
    student, _ = load_model(tmp_path / "tiny" / "distill" / "model")
    rounding = report.pruning["channel_rounding"]
    before, after = _conv_widths(student), _conv_widths(model)
    changed = {n: c for n, c in after.items() if c != before[n]}
    assert rounding and changed and all(c % rounding == 0 for c in changed.values()), (rounding, changed)


def test_no_step_paid_keeps_the_input(finished_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even step 1 made it slower: the unpruned input is saved as the pruned model (no history)."""
    from edgekd.engines.reporting.outcome import pruning_section

    seq = iter([1.0, 1.3])
    _fake_clock(monkeypatch, lambda m, s: next(seq), teacher_ms=lambda m, s: 10.0)
    report = edgekd.prune(_prune_run(finished_run, tmp_path, {"flops_ratio": 1.6}), ["host"], quiet=True)
    stop = report.pruning["stopped"]
    assert report.pruning["steps"] == [] and (stop["step"], stop["steps_kept"]) == (1, 0)
    assert "slower on host" in stop["reason"]
    model, spec = load_model(tmp_path / "tiny" / "prune" / "model")
    assert not spec.pruning_history and spec.role == "pruned"
    assert count_macs(model, 16) == report.pruning["base"]["macs"] == report.model("pruned").macs
    assert any("prune did not pay" in line for line in pruning_section(report).lines)


def test_an_unreachable_size_ratio_keeps_the_deepest_cut(finished_run, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """flops_ratio is a recipe, not a budget: when torch-pruning cannot remove more (a student
    that is the teacher already pruned to the budget), the deepest cut is kept, fine-tuned and
    said; the run goes on. A latency target that cannot be met stays an error (below)."""
    _fake_clock(monkeypatch, _macs_ms, teacher_ms=lambda m, s: 10.0)
    report = edgekd.prune(_prune_run(finished_run, tmp_path, {"flops_ratio": 1000.0, "steps": 1}), ["host"],
                          quiet=True)
    steps, stop = report.pruning["steps"], report.pruning["stopped"]
    assert [s["step"] for s in steps] == [1] and (stop["step"], stop["steps_kept"]) == (1, 1)
    assert stop["reason"].startswith("could not reach macs") and "the most torch-pruning allows" in stop["reason"]
    assert report.model("pruned").macs == steps[0]["macs"] < report.pruning["base"]["macs"] / 2


def _macs_ms(model: nn.Module, size: int) -> float:
    return count_macs(model, size) / 1e6  # a deterministic clock: 1 ms per MMAC


def test_speedup_target_binds(finished_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prune.speedup: prune until latency ≤ the teacher's / speedup on every target, recorded per step."""
    from conftest import STUDENT, TEACHER

    teacher_ms = _macs_ms(build_model(TEACHER["model"], 10, TEACHER["kwargs"]), 16)
    student_ms = _macs_ms(build_model(STUDENT["model"], 10, STUDENT["kwargs"]), 16)
    speedup = 1.5 * teacher_ms / student_ms  # the student must lose a third of its time
    _fake_clock(monkeypatch, _macs_ms)
    report = edgekd.prune(_prune_run(finished_run, tmp_path, {"speedup": speedup}), ["host"], quiet=True)
    steps, limit = report.pruning["steps"], teacher_ms / speedup
    assert [s["step"] for s in steps] == [1, 2] and "stopped" not in report.pruning
    assert steps[0]["latency"]["host"]["ms"] > limit >= steps[1]["latency"]["host"]["ms"]
    assert report.pruning["base"]["latency"]["host"]["ms"] == pytest.approx(student_ms)
    manifest = json.loads((tmp_path / "tiny" / "manifest.json").read_text())
    budget = manifest["stages"]["prune"]["metrics"]["target"]["speedup"]["host"]
    assert budget["ms"] == pytest.approx(limit, rel=1e-4) and budget["basis"].startswith("teacher")


def test_unreachable_speedup_names_target_and_budget(finished_run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_clock(monkeypatch, _macs_ms)
    with pytest.raises(PruningError, match=r"prune.speedup 1000: on host the latency stopped at .* over the "
                                           r"budget .* ms \(teacher .* / 1000\)"):
        edgekd.prune(_prune_run(finished_run, tmp_path, {"speedup": 1000}), ["host"], quiet=True)


def test_a_step_already_reached_by_the_last_cut_is_fine_tuned_not_judged(finished_run, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Cuts come in whole channel blocks, so one step can overshoot the next step's goal. That
    step cuts nothing: it is not timed against itself (noise could call the same model "not
    faster" and stop pruning there), it is fine-tuned further and says so."""
    timed: list[int] = []

    def clock(model: nn.Module, size: int) -> float:
        timed.append(count_macs(model, size))
        return _macs_ms(model, size)

    _fake_clock(monkeypatch, clock, teacher_ms=lambda m, s: 10.0)
    report = edgekd.prune(_prune_run(finished_run, tmp_path, {"flops_ratio": 1.02, "steps": 3}), ["host"],
                          quiet=True)
    steps = report.pruning["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3] and not report.pruning.get("stopped")
    assert steps[0]["cut"] and not any(s["cut"] for s in steps[1:]), [s["cut"] for s in steps]
    assert len({s["macs"] for s in steps}) == 1 and len(timed) == 2  # the input and step 1's cut, once each
    from edgekd.engines.reporting.outcome import pruning_section

    section = pruning_section(report)
    assert [row[4] for row in section.rows[2:]] == ["nothing cut"] * 2
    assert any(line.startswith("Steps 2, 3 cut nothing") for line in section.lines), section.lines
