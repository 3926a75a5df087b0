"""The search spaces. A space declares its genes (name → choices) so the search can mutate
and cross genomes, and maps a genome to a buildable model (timm name or entry point + kwargs).

Spaces: ``resnet`` (block type, stem, blocks per stage, base width), ``mobilenetv3`` and
``efficientnet`` (width and depth multipliers through timm's builders), ``vit`` (small
vision transformers: depth, width, heads, patch grid, MLP ratio), ``timm`` (an explicit list
of timm models with kwargs). Parameters restrict or widen the choices.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgekd.core.errors import SearchError
from edgekd.core.registries import SEARCH_SPACES

Genome = dict[str, Any]


@dataclass(frozen=True)
class Gene:
    name: str
    choices: tuple[Any, ...]
    default: Any = None  # what a genome saved before this gene existed meant (None: it always existed)


class SearchSpace:
    """Genes plus a genome → model mapping; everything else (sampling, mutation) is shared."""

    name: str = "space"
    image_size: int | None = None  # the input the students are built for (set by build_space)

    def __init__(self, genes: list[Gene]) -> None:
        for g in genes:
            if not g.choices:
                raise SearchError(f"search space {self.name!r}: gene {g.name!r} has no choices",
                                  hint="give at least one value for it in search.space")
        self.genes = genes

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def size(self) -> int:
        n = 1
        for g in self.genes:
            n *= len(g.choices)
        return n

    def complete(self, genome: Genome) -> Genome:
        """``genome`` with the genes it lacks at their defaults, so a choice.json written before a
        gene was added still rebuilds the network it named."""
        out = dict(genome)
        for g in self.genes:
            if g.name not in out:
                if g.default is None:
                    raise SearchError(f"search space {self.name!r}: genome {genome} lacks gene {g.name!r}",
                                      hint=f"give {g.name} one of {list(g.choices)}")
                out[g.name] = g.default
        return out

    def key(self, genome: Genome) -> str:
        genome = self.complete(genome)
        return ",".join(f"{g.name}={genome[g.name]}" for g in self.genes)

    def all_genomes(self) -> Iterator[Genome]:
        for values in itertools.product(*(g.choices for g in self.genes)):
            yield dict(zip((g.name for g in self.genes), values, strict=True))

    def fastest_genomes(self, limit: int = 16) -> list[Genome]:
        """The candidates that bound how fast this space gets: the smallest value of every
        numeric gene (depth, width: more is never faster) with every choice of the others
        (stem, block type: which is faster depends on the target). Probed before training to
        tell what each target can reach; at most ``limit``."""
        choices = [(g.name, (min(g.choices),) if _numeric(g.choices) else g.choices) for g in self.genes]
        combos = itertools.product(*(c for _, c in choices))
        return [dict(zip((n for n, _ in choices), values, strict=True)) for values in itertools.islice(combos, limit)]

    def random_genome(self, rng: random.Random) -> Genome:
        return {g.name: rng.choice(g.choices) for g in self.genes}

    def mutate(self, genome: Genome, rng: random.Random, prob: float) -> Genome:
        """Each gene is resampled with probability ``prob``; at least one gene changes."""
        child = dict(genome)
        mutable = [g for g in self.genes if len(g.choices) > 1]
        for g in mutable:
            if rng.random() < prob:
                child[g.name] = rng.choice([c for c in g.choices if c != genome[g.name]])
        if child == genome and mutable:
            g = rng.choice(mutable)
            child[g.name] = rng.choice([c for c in g.choices if c != genome[g.name]])
        return child

    def crossover(self, a: Genome, b: Genome, rng: random.Random) -> Genome:
        """Uniform crossover: each gene from either parent."""
        return {g.name: (a if rng.random() < 0.5 else b)[g.name] for g in self.genes}


def _numeric(choices: tuple[Any, ...]) -> bool:
    return all(isinstance(c, int | float) and not isinstance(c, bool) for c in choices)


def _nonempty(v: list) -> list:
    if not v:
        raise ValueError("needs at least one choice")
    return v


STEMS = ("7x7", "3x3")


class ResNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    blocks: list[str] = Field(default_factory=lambda: ["basic"], description="basic and/or bottleneck")
    stems: list[str] = Field(default_factory=lambda: list(STEMS),
                             description="7x7 (one 7×7 conv, 64 channels) and/or 3x3 (three 3×3 convs, width/2, "
                                         "width/2, width)")
    depths: list[int] = Field(default_factory=lambda: [1, 2], description="blocks per stage")
    widths: list[int] = Field(default_factory=lambda: [8, 16, 24, 32, 48, 64], description="first-stage channels")
    stages: list[int] = Field(default_factory=lambda: [4], description="numbers of stages to try, 2-4: fewer stages "
                              "are fewer layers, what a launch-bound GPU at batch 1 pays for (4: timm's ResNet)")

    @field_validator("stages", mode="before")
    @classmethod
    def _stages(cls, v: Any) -> list[int]:
        v = [v] if isinstance(v, int) else v
        if not v or any(not isinstance(x, int) or not 2 <= x <= 4 for x in v):
            raise ValueError(f"stages must be a non-empty list of 2, 3 and/or 4, got {v}")
        return v

    _ne = field_validator("blocks", "stems", "depths", "widths")(_nonempty)

    @field_validator("stems")
    @classmethod
    def _stems(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in STEMS]
        if bad:
            raise ValueError(f"unknown stem {bad}; choose 7x7 and/or 3x3")
        return v

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, v: list[str]) -> list[str]:
        bad = [b for b in v if b not in ("basic", "bottleneck")]
        if bad:
            raise ValueError(f"unknown block type {bad}; choose basic or bottleneck")
        return v

    @field_validator("depths", "widths")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError(f"values must be ≥ 1, got {v}")
        return v


@SEARCH_SPACES.register("resnet", params=ResNetParams,
                        help="ResNet family: block type, stem, depth per stage, width")
class ResNetSpace(SearchSpace):
    """timm's ResNet with a searched stem, blocks per stage and width.

    The stem is a gene because timm's default stem is a fixed 7×7, 64-channel conv (it ignores
    ``stem_width``): at 32 px it alone costs 2.4 M MACs, so no candidate could get 10× below a
    resnet18 teacher. ``3x3`` is timm's own deep stem (``stem_type="deep"``: three 3×3 convs of
    ``stem_width``, ``stem_width``, ``2·stem_width`` channels). Its width is tied to the first
    stage: ``stem_width = width // 2``, so the stem hands the first stage ``width`` channels, as
    timm's deep-stem ResNets do (resnet18d: 32, 32, 64 into a 64-channel stage). A separate gene
    would double the space (192 → 384 by default, past the evolution budget of 216, so no longer
    enumerated) and half of it would be 7×7 duplicates, where the width means nothing.
    """

    name = "resnet"

    def __init__(self, p: ResNetParams) -> None:
        self.p = p
        genes = [Gene("block", tuple(p.blocks)), Gene("stem", tuple(p.stems), default="7x7")]
        genes += [Gene(f"depth{i + 1}", tuple(sorted(set(p.depths)))) for i in range(4)]
        genes.append(Gene("width", tuple(sorted(set(p.widths)))))
        if p.stages != [4]:  # only when asked: the default space keeps its genomes and keys
            genes.append(Gene("stages", tuple(sorted(set(p.stages))), default=4))
        super().__init__(genes)

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        genome = self.complete(genome)  # genomes from before the stem gene: timm's 7×7 stem
        w = genome["width"]
        kwargs: dict[str, Any] = {"layers": [genome[f"depth{i + 1}"] for i in range(4)],
                                  "channels": [w, 2 * w, 4 * w, 8 * w]}
        if genome["stem"] == "3x3":
            kwargs |= {"stem_type": "deep", "stem_width": max(1, w // 2)}
        name = "resnet18" if genome["block"] == "basic" else "resnet50"
        n = genome.get("stages", 4)
        if n < 4:  # timm's ResNet always runs four stages: an entry point leaves the last ones out
            kwargs = {**kwargs, "layers": kwargs["layers"][:n], "channels": kwargs["channels"][:n]}
            return "edgekd.engines.search.builders:resnet_stages", {"variant": name, **kwargs}
        return name, kwargs


class MultiplierParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    widths: list[float] = Field(default_factory=lambda: [0.35, 0.5, 0.75, 1.0])
    depths: list[float] = Field(default_factory=lambda: [0.5, 0.75, 1.0])

    _ne = field_validator("widths", "depths")(_nonempty)

    @field_validator("widths", "depths")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(x <= 0 or x > 4 for x in v):
            raise ValueError(f"multipliers must be in (0, 4], got {v}")
        return v


class MobileNetParams(MultiplierParams):
    sizes: list[str] = Field(default_factory=lambda: ["small", "large"])

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[str]) -> list[str]:
        if not v or any(s not in ("small", "large") for s in v):
            raise ValueError(f"sizes must be a non-empty subset of [small, large], got {v}")
        return v


@SEARCH_SPACES.register("mobilenetv3", params=MobileNetParams, help="MobileNetV3 small/large × width × depth")
class MobileNetV3Space(SearchSpace):
    name = "mobilenetv3"

    def __init__(self, p: MobileNetParams) -> None:
        super().__init__([Gene("size", tuple(p.sizes)), Gene("width", tuple(sorted(set(p.widths)))),
                          Gene("depth", tuple(sorted(set(p.depths))))])

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        return "edgekd.engines.search.builders:mobilenetv3", dict(genome)


@SEARCH_SPACES.register("efficientnet", params=MultiplierParams, help="EfficientNet-B0 layout × width × depth")
class EfficientNetSpace(SearchSpace):
    name = "efficientnet"

    def __init__(self, p: MultiplierParams) -> None:
        super().__init__([Gene("width", tuple(sorted(set(p.widths)))), Gene("depth", tuple(sorted(set(p.depths))))])

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        return "edgekd.engines.search.builders:efficientnet", dict(genome)


class ViTParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depths: list[int] = Field(default_factory=lambda: [2, 4, 6], description="transformer blocks")
    widths: list[int] = Field(default_factory=lambda: [64, 128, 192], description="embedding width (channels per token)")
    heads: list[int] = Field(default_factory=lambda: [2, 4], description="attention heads (each width must divide "
                             "by each count)")
    grids: list[int] = Field(default_factory=lambda: [4, 8], description="patches per image side: the patch is "
                             "image_size / grid pixels, so the token count does not change with the resolution")
    mlp_ratios: list[float] = Field(default_factory=lambda: [2.0, 4.0], description="MLP hidden width over the "
                                    "embedding width")

    _ne = field_validator("depths", "widths", "heads", "grids", "mlp_ratios")(_nonempty)

    @field_validator("depths", "widths", "heads", "grids", "mlp_ratios")
    @classmethod
    def _positive(cls, v: list) -> list:
        if any(x <= 0 for x in v):
            raise ValueError(f"values must be > 0, got {v}")
        return v

    @model_validator(mode="after")
    def _heads_divide_widths(self) -> ViTParams:
        bad = [(w, h) for w in self.widths for h in self.heads if w % h]
        if bad:
            raise ValueError(f"every width must divide by every head count; {bad[0][0]} does not divide by {bad[0][1]}")
        return self


@SEARCH_SPACES.register("vit", params=ViTParams, help="small vision transformers: depth × width × heads × patch "
                        "grid × MLP ratio (timm's VisionTransformer)")
class ViTSpace(SearchSpace):
    """timm's ``VisionTransformer`` (a class token, pre-norm blocks, GELU MLPs), built for the run's
    input size: its position embedding has one entry per patch, so the image size is part of the
    architecture. The patch is a grid (patches per side), not pixels, so the same genome means the
    same token count at 32 px and at 224 px."""

    name = "vit"

    def __init__(self, p: ViTParams) -> None:
        self.p = p
        super().__init__([Gene("depth", tuple(sorted(set(p.depths)))), Gene("width", tuple(sorted(set(p.widths)))),
                          Gene("heads", tuple(sorted(set(p.heads)))), Gene("grid", tuple(sorted(set(p.grids)))),
                          Gene("mlp_ratio", tuple(sorted(set(p.mlp_ratios))))])

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        if self.image_size is None:
            raise SearchError("search space 'vit' needs the input size (a ViT's position embedding has one entry "
                              "per patch)", hint="set data.image_size")
        if self.image_size % genome["grid"]:
            raise SearchError(f"search space 'vit': image size {self.image_size} does not divide into a "
                              f"{genome['grid']}×{genome['grid']} patch grid",
                              hint="choose search.space.params.grids that divide data.image_size")
        return "vit_tiny_patch16_224", {"img_size": self.image_size, "patch_size": self.image_size // genome["grid"],
                                        "embed_dim": genome["width"], "depth": genome["depth"],
                                        "num_heads": genome["heads"], "mlp_ratio": genome["mlp_ratio"]}


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


def _default_candidates() -> list[Candidate]:
    return [Candidate(model=m) for m in (
        "mobilenetv3_small_050", "mobilenetv3_small_075", "mobilenetv3_small_100", "mobilenetv3_large_075",
        "resnet10t", "resnet14t", "regnetx_002", "regnetx_004", "efficientnet_lite0", "ghostnet_050",
        "lcnet_050", "lcnet_075", "lcnet_100", "mnasnet_small", "tinynet_e", "tinynet_d")]


class TimmListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidates: list[Candidate] = Field(default_factory=_default_candidates, min_length=1)


@SEARCH_SPACES.register("timm", params=TimmListParams, help="an explicit list of timm models (with kwargs)")
class TimmListSpace(SearchSpace):
    name = "timm"

    def __init__(self, p: TimmListParams) -> None:
        import timm

        unknown = [c.model for c in p.candidates if ":" not in c.model and not timm.is_model(c.model)]
        if unknown:
            raise SearchError(f"search space 'timm': unknown timm models {unknown}",
                              hint="see timm.list_models(); entry points 'module:function' are allowed too")
        self.candidates = p.candidates
        super().__init__([Gene("index", tuple(range(len(p.candidates))))])

    def fastest_genomes(self, limit: int = 16) -> list[Genome]:
        """Any listed model may be the fastest: the list's first ``limit``."""
        return [{"index": i} for i in range(min(limit, len(self.candidates)))]

    def key(self, genome: Genome) -> str:
        c = self.candidates[genome["index"]]
        return c.model + (f"{c.kwargs}" if c.kwargs else "")

    def model(self, genome: Genome) -> tuple[str, dict[str, Any]]:
        c = self.candidates[genome["index"]]
        return c.model, dict(c.kwargs)


def build_space(name: str, params: BaseModel, image_size: int | None = None) -> SearchSpace:
    space = SEARCH_SPACES.get(name, key="search.space")(params)
    space.image_size = image_size
    return space
