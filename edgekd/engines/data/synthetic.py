"""A generated image-classification set that is hard on purpose.

Digits is saturated (a resnet18 reaches 99.7% and a 13×-pruned copy 99.5%), so it cannot
rank methods. Here each class is a (shape, texture) pair drawn on a randomly coloured,
rotated and scaled object over a cluttered background, with a smaller distractor object
and pixel noise. Colour carries no class information; classes that share a shape or a
texture are confusable, which is the inter-class structure a teacher's soft targets
carry. ``difficulty`` (0–1) scales clutter, distractors and noise; at the default a
resnet18 teacher lands around 85–95% (see benchmarks/RESULTS.md).

Generated with torch on the CPU in chunks, deterministic for a seed, about 1 s per
10k images at 32 px. Nothing is downloaded.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field

from edgekd.core.config import DataConfig
from edgekd.core.registries import DATASETS
from edgekd.engines.data.bundle import DataBundle
from edgekd.engines.data.preprocess import Preprocess

SHAPES = ("disc", "square", "triangle", "cross", "ring", "diamond")
TEXTURES = ("solid", "stripes", "checker", "dots")


class SyntheticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_classes: int = Field(10, ge=2, le=len(SHAPES) * len(TEXTURES))
    train_size: int = Field(6000, ge=10)
    val_size: int = Field(2000, ge=10)
    difficulty: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0


def _shape_mask(kind: torch.Tensor, u: torch.Tensor, v: torch.Tensor, soft: float) -> torch.Tensor:
    """Soft inside-mask of each sample's shape in its own (rotated, scaled) frame."""
    r = torch.sqrt(u * u + v * v)
    sdfs = torch.stack(
        [
            r - 0.9,  # disc
            torch.maximum(u.abs(), v.abs()) - 0.75,  # square
            torch.maximum(v * -1 - 0.55, (u.abs() * 1.7 + v) - 0.9),  # triangle
            torch.minimum(
                torch.maximum(u.abs() - 0.28, v.abs() - 0.9),
                torch.maximum(v.abs() - 0.28, u.abs() - 0.9),
            ),  # cross
            (r - 0.65).abs() - 0.25,  # ring
            (u.abs() + v.abs()) - 1.0,  # diamond
        ],
        dim=1,
    )  # [n, S, H, W]
    sdf = sdfs.gather(1, kind.view(-1, 1, 1, 1).expand(-1, 1, *u.shape[-2:])).squeeze(1)
    return torch.sigmoid(-sdf * soft)


def _texture(kind: torch.Tensor, u: torch.Tensor, v: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    f = freq.view(-1, 1, 1)
    tex = torch.stack(
        [
            torch.ones_like(u),
            0.5 + 0.5 * torch.sin(math.pi * f * u),
            0.5 + 0.5 * torch.sign(torch.sin(math.pi * f * u) * torch.sin(math.pi * f * v)),
            (torch.cos(math.pi * f * u) * torch.cos(math.pi * f * v) > 0.3).float(),
        ],
        dim=1,
    )
    return tex.gather(1, kind.view(-1, 1, 1, 1).expand(-1, 1, *u.shape[-2:])).squeeze(1)


def _random_colour(n: int, g: torch.Generator) -> torch.Tensor:
    c = torch.rand(n, 3, generator=g)
    return c / c.max(dim=1, keepdim=True).values.clamp_min(1e-3)


def _draw_objects(
    n: int, size: int, shape: torch.Tensor, texture: torch.Tensor, scale: tuple[float, float],
    g: torch.Generator, jitter: float, rotation: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Alpha mask [n,H,W] and RGB [n,3,H,W] of one object per sample (rotated by up to ±rotation)."""
    lin = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    cx, cy = [(torch.rand(n, generator=g) - 0.5) * 2 * jitter for _ in range(2)]
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=g)
    th = (torch.rand(n, generator=g) * 2 - 1) * rotation
    dx = (xx.unsqueeze(0) - cx.view(-1, 1, 1)) / s.view(-1, 1, 1)
    dy = (yy.unsqueeze(0) - cy.view(-1, 1, 1)) / s.view(-1, 1, 1)
    c, si = torch.cos(th).view(-1, 1, 1), torch.sin(th).view(-1, 1, 1)
    u, v = c * dx + si * dy, -si * dx + c * dy
    mask = _shape_mask(shape, u, v, soft=size / 3)
    freq = 2.5 + 1.5 * torch.rand(n, generator=g)
    tex = _texture(texture, u, v, freq)
    colour = _random_colour(n, g).view(n, 3, 1, 1)
    rgb = colour * (0.35 + 0.65 * tex.unsqueeze(1))
    return mask, rgb


def _background(n: int, size: int, g: torch.Generator, clutter: float) -> torch.Tensor:
    lin = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    base = _random_colour(n, g).view(n, 3, 1, 1) * (0.2 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
    th = torch.rand(n, generator=g).view(-1, 1, 1) * math.pi
    f = (1.0 + 5.0 * torch.rand(n, generator=g)).view(-1, 1, 1)
    grating = torch.sin(math.pi * f * (torch.cos(th) * xx + torch.sin(th) * yy))
    tint = _random_colour(n, g).view(n, 3, 1, 1)
    return (base + clutter * 0.35 * grating.unsqueeze(1) * tint).clamp(0, 1)


def generate(n: int, size: int, num_classes: int, difficulty: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (uint8 [n,3,size,size]) and labels, deterministic for ``seed``."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for start in range(0, n, 2048):
        m = min(2048, n - start)
        y = torch.randint(0, num_classes, (m,), generator=g)
        shape, texture = y % len(SHAPES), y // len(SHAPES)
        rotation = math.pi * difficulty
        img = _background(m, size, g, clutter=0.3 + 0.7 * difficulty)
        # distractor: a smaller object of a random class, drawn first so the target may occlude it
        has_d = (torch.rand(m, generator=g) < 0.6 * difficulty).float().view(m, 1, 1)
        dy = torch.randint(0, num_classes, (m,), generator=g)
        dmask, drgb = _draw_objects(m, size, dy % len(SHAPES), dy // len(SHAPES), (0.22, 0.34), g, 0.7, math.pi)
        a = (dmask * has_d).unsqueeze(1)
        img = img * (1 - a) + drgb * a
        mask, rgb = _draw_objects(m, size, shape, texture, (0.45, 0.75), g, 0.2 + 0.2 * difficulty, rotation)
        opacity = (1.0 - 0.4 * difficulty * torch.rand(m, generator=g)).view(m, 1, 1, 1)
        a = mask.unsqueeze(1) * opacity
        img = img * (1 - a) + rgb * a
        img = img + (0.03 + 0.15 * difficulty) * torch.randn(img.shape, generator=g)
        xs.append((img.clamp(0, 1) * 255).round().to(torch.uint8))
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def class_names(num_classes: int) -> list[str]:
    return [f"{SHAPES[c % len(SHAPES)]}-{TEXTURES[c // len(SHAPES)]}" for c in range(num_classes)]


@DATASETS.register("synthetic", params=SyntheticParams, help="generated shapes × textures, hard on purpose")
def load_synthetic(cfg: DataConfig, p: SyntheticParams, prep: Preprocess) -> DataBundle:
    # train and val come from disjoint seeds, so no image is in both; drawn at the input size (no crop)
    tx, ty = generate(p.train_size, prep.size, p.num_classes, p.difficulty, p.seed * 2)
    vx, vy = generate(p.val_size, prep.size, p.num_classes, p.difficulty, p.seed * 2 + 1)
    return DataBundle(
        "synthetic", tx, ty, vx, vy, class_names(p.num_classes), prep,
        {"params": p.model_dump(), "size": prep.size},
    )
