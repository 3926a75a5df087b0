"""The default search space follows the teacher's family; several spaces search as one."""

from __future__ import annotations

import random

import timm
import torch

from edgekd.core.config import SearchConfig
from edgekd.engines.models.build import build_model
from edgekd.engines.models.families import family_of
from edgekd.engines.search.families import search_space
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


TRANSFORMERS = {
    "vision transformer": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 4, "depth": 1, "embed_dim": 32,
                                                    "num_heads": 2}),
    "hierarchical transformer": ("swin_tiny_patch4_window7_224", {"img_size": 32, "patch_size": 2, "window_size": 4,
                                                                  "embed_dim": 24, "depths": (1, 1),
                                                                  "num_heads": (1, 2)}),
    "convnext": ("convnext_atto", {"dims": (16, 32, 64, 128), "depths": (1, 1, 1, 1)}),
    "hybrid": ("mobilevit_xxs", {}),
}


def test_transformers_convnext_and_hybrids_are_families_with_their_own_recipe_and_spaces() -> None:
    from edgekd.engines.models.families import default_recipe

    for family, (name, kwargs) in TRANSFORMERS.items():
        model = build_model(name, 10, kwargs)
        assert family_of(model).name == family, name
        assert default_recipe(model) == ("adamw", family)
    assert family_of(build_model("deit_tiny_patch16_224", 10, {"img_size": 32, "patch_size": 4, "depth": 1})).name \
        == "vision transformer"
    assert family_of(build_model("fastvit_t8", 10)).name == "hybrid"  # hybrids hold plain ViT blocks too
    assert family_of(build_model("levit_128s", 10, {"img_size": 32})).name == "hybrid"
    assert family_of(build_model("swinv2_cr_tiny_224", 10)).name == "hierarchical transformer"
    assert family_of(build_model("convnextv2_atto", 10)).name == "convnext"
    assert default_recipe(timm.create_model("resnet18", num_classes=10)) == ("sgd", "residual")
    # a ViT teacher searches small ViTs and ResNets as one space, built for the run's input size
    space = search_space(SearchConfig(), build_model(*TRANSFORMERS["vision transformer"][:1], 10,
                                                     TRANSFORMERS["vision transformer"][1]), 32)
    assert space.name == "vit+resnet" and space.size() == 72 + 192
    vits = [g for g in space.all_genomes() if g["space"] == "vit"]
    name, kwargs = space.model(vits[0])
    assert kwargs["img_size"] == 32 and kwargs["patch_size"] == 32 // vits[0]["grid"]
    assert build_model(name, 10, kwargs).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_the_vit_space_refuses_heads_that_do_not_divide_the_width_and_grids_that_do_not_divide_the_image() -> None:
    import pytest

    from edgekd.core.errors import SearchError
    from edgekd.engines.search.spaces import ViTParams

    with pytest.raises(ValueError, match="every width must divide by every head count; 100 does not divide by 3"):
        ViTParams(widths=[100], heads=[3])
    space = build_space("vit", ViTParams(grids=[5]), 32)
    with pytest.raises(SearchError, match="image size 32 does not divide into a 5×5 patch grid"):
        space.model(next(iter(space.all_genomes())))
