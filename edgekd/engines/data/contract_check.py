"""Verifying a guessed input contract on the teacher itself, before anything trains on it.

A field of the contract that neither the user nor the checkpoint's record states is a guess
(timm's pretrained_cfg of the architecture, or edgekd's default), and a wrong guess costs
points silently: a resnet18 a plain script trained on 32 px images with ImageNet statistics
and no resize reads 2.3 points lower under timm's resnet18 config (crop 0.95, bicubic).
So where a field is guessed, the teacher is evaluated on validation images under every
plausible value of the guessed fields (geometry: as resolved / squash / resize + centre crop
0.875; interpolation: bilinear / bicubic; statistics: ImageNet / this data set / none;
channels: RGB / BGR) and the most accurate contract is used; each reading is printed and the
choice recorded. A candidate must beat the resolved contract by ``MARGIN`` points to replace
it: on a few hundred images, a smaller lead is noise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from edgekd.engines.data.bundle import Data
from edgekd.engines.data.preprocess import NAMED_STATS, Preprocess

SAMPLES = 512  # validation images each candidate is read on
MARGIN = 0.5  # points a candidate must gain over the resolved contract
STATED = ("config", "teacher checkpoint", "data set statistics (config)")
VERIFIED = "verified on validation images"


def guessed_fields(p: Preprocess) -> set[str]:
    """The contract's fields that no one stated (timm's config of the architecture, or a default)."""
    return {k for k, src in p.sources.items() if k != "size" and not src.startswith(STATED)}


def _geometries(p: Preprocess, guessed: set[str]) -> list[tuple[str, float, str]]:
    resize = [(p.resize, p.crop_fraction)]
    if guessed & {"resize", "crop_fraction"}:
        resize += [("squash", 1.0), ("crop", 0.875)]
    interp = [p.interpolation] + ([i for i in ("bilinear", "bicubic") if i != p.interpolation]
                                  if "interpolation" in guessed else [])
    return list(dict.fromkeys((r, c, i) for (r, c), i in itertools.product(resize, interp)))


def _normalisations(p: Preprocess, data: Data, guessed: set[str]) -> list[tuple[tuple, tuple, str]]:
    stats = [(p.mean, p.std)]
    if guessed & {"mean", "std"}:
        ds_mean, ds_std = data.channel_stats()
        stats += [NAMED_STATS["imagenet"], (tuple(ds_mean), tuple(ds_std)), ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))]
    channels = [p.channels] + (["BGR" if p.channels == "RGB" else "RGB"] if "channels" in guessed else [])
    return list(dict.fromkeys((tuple(m), tuple(s), c) for (m, s), c in itertools.product(stats, channels)))


def _accuracy(teacher: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, p: Preprocess) -> float:
    with torch.no_grad():
        hits = sum(int((teacher(p.normalize(x[i:i + 64])).argmax(1) == y[i:i + 64]).sum())
                   for i in range(0, len(x), 64))
    return 100.0 * hits / max(1, len(x))


def verify_contract(teacher: torch.nn.Module, data: Data, load: Callable[[Preprocess], Data]
                    ) -> tuple[Data, list[str], list[dict[str, Any]]]:
    """``data`` under the most accurate plausible contract (reloaded when it differs), notes for
    people and every reading. ``load``: the data under another contract, in the teacher's class order."""
    p = data.preprocess
    guessed = guessed_fields(p)
    if not guessed:
        return data, [], []
    teacher = teacher.eval()
    readings: list[dict[str, Any]] = []
    for resize, crop, interp in _geometries(p, guessed):
        geo = replace(p, resize=resize, crop_fraction=crop, interpolation=interp)
        d = data if (resize, crop, interp) == (p.resize, p.crop_fraction, p.interpolation) else load(geo)
        x, y = d.val_images(SAMPLES)
        for mean, std, ch in _normalisations(p, d, guessed):
            cand = replace(geo, mean=mean, std=std, channels=ch)
            readings.append({"contract": cand, "accuracy": round(_accuracy(teacher, x, y, cand), 2),
                             "resolved": cand == p})
    base = next(r for r in readings if r["resolved"])
    best = max(readings, key=lambda r: r["accuracy"])
    chosen = best if best["accuracy"] >= base["accuracy"] + MARGIN else base
    c: Preprocess = chosen["contract"]
    lines = [f"{r['accuracy']:.2f}% {r['contract'].describe()}" + (" (as resolved)" if r["resolved"] else "")
             for r in sorted(readings, key=lambda r: -r["accuracy"])]
    notes = [f"input contract: {', '.join(sorted(guessed))} were guessed, so the teacher was read on "
             f"{min(SAMPLES, data.num_val)} validation images under {len(readings)} contracts: "
             + "; ".join(lines[:6]) + (f"; +{len(lines) - 6} more" if len(lines) > 6 else "")]
    record = [{"contract": r["contract"].record(), "accuracy": r["accuracy"], "resolved": r["resolved"]}
              for r in readings]
    if chosen is base:
        notes.append(f"input contract: kept as resolved ({base['accuracy']:.2f}%; no other is "
                     f"{MARGIN:g} points better)")
        return data, notes, record
    changed = {k for k in guessed if getattr(c, k) != getattr(p, k)}
    sources = {**p.sources, **{k: f"{VERIFIED} (best of {len(readings)})" for k in changed}}
    final = load(replace(c, sources=sources))
    notes.append(f"input contract: using {c.describe()} ({best['accuracy']:.2f}% against {base['accuracy']:.2f}% "
                 f"as resolved); state data.preprocess to choose it yourself")
    return final, notes, record
