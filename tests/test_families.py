"""The default search space follows the teacher's family; several spaces search as one."""

from __future__ import annotations

import random

import timm
import torch

from edgekd.core.config import SearchConfig
from edgekd.engines.models.build import build_model
from edgekd.engines.search.families import family_of, search_space
from edgekd.engines.search.spaces import ResNetParams, build_space
from edgekd.engines.search.union import UnionSpace


def test_the_family_is_read_from_the_blocks_not_the_name() -> None:
    assert family_of(timm.create_model("resnet18", num_classes=10)).name == "residual"
    for name in ("mobilenetv3_small_100", "tf_efficientnet_lite0", "mnasnet_100"):
        assert family_of(timm.create_model(name, num_classes=10)).name == "inverted residual", name
    assert family_of(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten())) is None


def test_the_default_space_follows_the_teacher_and_a_written_one_wins() -> None:
    resnet = search_space(SearchConfig(), timm.create_model("resnet18", num_classes=10))
    assert resnet.name == "resnet" and resnet.size() == 192
    mobile = search_space(SearchConfig(), timm.create_model("tf_efficientnet_lite0", num_classes=10))
    assert isinstance(mobile, UnionSpace) and mobile.name == "mobilenetv3+efficientnet" and mobile.size() == 24 + 12
    written = search_space(SearchConfig.model_validate({"space": {"name": "resnet"}}),
                           timm.create_model("mobilenetv3_small_100", num_classes=10))
    assert written.name == "resnet"


def test_a_union_space_enumerates_mutates_and_builds_across_its_members() -> None:
    space = search_space(SearchConfig(), timm.create_model("mobilenetv3_small_100", num_classes=10))
    genomes = list(space.all_genomes())
    keys = {space.key(g) for g in genomes}
    assert len(genomes) == len(keys) == space.size()
    assert {k.split(":")[0] for k in keys} == {"mobilenetv3", "efficientnet"}
    rng = random.Random(0)
    seen = set()
    for _ in range(60):
        g = space.mutate(space.random_genome(rng), rng, 0.3)
        child = space.crossover(g, space.random_genome(rng), rng)
        assert space.key(child) in keys and space.key(g) in keys
        seen.add(g["space"])
    assert seen == {"mobilenetv3", "efficientnet"}
    name, kwargs = space.model(genomes[-1])
    out = build_model(name, 10, kwargs).eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10)


def test_the_fastest_genomes_take_the_smallest_of_every_numeric_gene() -> None:
    space = build_space("resnet", ResNetParams())
    fastest = space.fastest_genomes()
    assert [g["stem"] for g in fastest] == ["7x7", "3x3"]
    assert all(g["width"] == 8 and all(g[f"depth{i}"] == 1 for i in range(1, 5)) for g in fastest)
