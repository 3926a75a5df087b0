"""Removing whole residual blocks (depth) for a launch-bound target: recorded, replayed, judged per target."""

from __future__ import annotations

from pathlib import Path

import timm
import torch

from edgekd.core.budgets import Reach
from edgekd.engines.budgets import RunBudgets, TargetBudget
from edgekd.engines.models.artifact import ModelSpec, load_model, save_model
from edgekd.engines.pruning.blocks import drop_blocks, droppable_blocks
from edgekd.engines.pruning.structured import magnitude_pruner
from edgekd.stages.distill.sources import reachable_limits


def test_blocks_with_an_identity_shortcut_go_and_the_artifact_rebuilds_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=10, layers=[2, 2, 1, 1], channels=[16, 32, 64, 64]).eval()
    assert droppable_blocks(model) == ["layer1.1", "layer2.1"]  # the first block of a stage has a downsample
    x = torch.randn(2, 3, 16, 16)
    history = drop_blocks(model)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert convs == 1 + 4 * 3  # the stem, and the first block of each stage with its shortcut conv
    pruner = magnitude_pruner(model, x[:1], round_to=None)
    pruner.step_until(lambda: pruner.micro_steps >= 5)
    history += pruner.history()
    spec = ModelSpec("resnet18", 10, {"layers": [2, 2, 1, 1], "channels": [16, 32, 64, 64]},
                     {"size": [16, 16]}, pruning_history=history)
    again, _ = load_model(save_model(model, spec, tmp_path / "m"))
    with torch.no_grad():
        assert torch.allclose(model(x), again(x), atol=1e-6)


def _b(name: str, ms: float, channels: float, shallow: float | None) -> TargetBudget:
    return TargetBudget(name, ms, "x", 4.0, {"ms": 4 * ms}, reach=Reach(0.1, "a", channels, "predicted", shallow))


def test_the_pruned_teacher_loses_depth_only_when_that_brings_a_target_within_reach() -> None:
    cpu_only = RunBudgets({"host": _b("host", 0.2, 0.1, None), "gpu": _b("gpu", 0.2, 0.3, 0.4)})
    limits, missed, shallow = reachable_limits(cpu_only)
    assert limits == {"host": 0.2} and not shallow and "gpu (as far as it goes 0.3 ms > 0.2 ms" in missed[0]
    both = RunBudgets({"host": _b("host", 0.2, 0.1, 0.08), "gpu": _b("gpu", 0.2, 0.3, 0.15)})
    limits, missed, shallow = reachable_limits(both)
    assert limits == {"host": 0.2, "gpu": 0.2} and shallow and not missed


def test_fewer_stages_reach_further_on_a_launch_bound_gpu(tmp_path: Path) -> None:
    """search.space: {name: resnet, stages: [2, 4]}: the two-stage candidates are fewer layers,
    predicted faster on the Orin Nano than any four-stage one, and rebuild exactly from disk."""
    from edgekd.core.profiles import resolve_target
    from edgekd.engines.latency.budgets import best_latency
    from edgekd.engines.models.build import build_model
    from edgekd.engines.search.spaces import ResNetParams, build_space

    jetson = resolve_target("jetson")[0]
    space = build_space("resnet", ResNetParams(stages=[2, 4], depths=[1], widths=[8], stems=["7x7"]))
    ms = {}
    for g in space.all_genomes():
        name, kwargs = space.model(g)
        torch.manual_seed(0)
        model = build_model(name, 10, kwargs).eval()
        ms[g["stages"]] = best_latency(model, jetson, 32).ms
    assert ms[2] < 0.85 * ms[4], ms
    spec = ModelSpec(name, 10, kwargs, {"size": [32, 32]})  # the last one built: four stages
    name2, kwargs2 = space.model({**g, "stages": 2})
    two = build_model(name2, 10, kwargs2).eval()
    again, _ = load_model(save_model(two, ModelSpec(name2, 10, kwargs2, {"size": [32, 32]}), tmp_path / "two"))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(two(x), again(x)) and spec.model == "resnet18"
