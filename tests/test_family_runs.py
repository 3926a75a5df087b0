"""Whole runs with teachers and students of other families than ResNet/MobileNet: every stage,
two targets (host measured, Raspberry Pi 5 predicted). The ViT run is in the default suite; the
other families are slow tests (``pytest -m slow``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_config

import edgekd
from edgekd.engines.models.families import family_of

SIZE = 16
TINY_VIT = {"name": "vit", "depths": [1], "widths": [32], "heads": [2], "grids": [4], "mlp_ratios": [2.0]}
TEACHERS = {
    "vision transformer": ("vit_tiny_patch16_224", {"img_size": SIZE, "patch_size": 4, "depth": 2, "embed_dim": 64,
                                                    "num_heads": 2}, TINY_VIT),
    "convnext": ("convnext_atto", {"dims": (16, 32, 64, 128), "depths": (1, 1, 1, 1)},  # 32 px: 4 stages of /2
                 {"name": "resnet", "depths": [1], "widths": [8], "stems": ["3x3"]}),
    "hierarchical transformer": ("swin_tiny_patch4_window7_224", {"img_size": SIZE, "patch_size": 2, "window_size": 4,
                                                                  "embed_dim": 24, "depths": (1, 1),
                                                                  "num_heads": (1, 2)}, TINY_VIT),
    "hybrid": ("mobilevit_xxs", {}, {"name": "mobilenetv3", "sizes": ["small"], "widths": [0.35], "depths": [0.5]}),
}


def _run(tmp_path: Path, family: str) -> Any:
    model, kwargs, space = TEACHERS[family]
    size = 32 if family == "convnext" else SIZE  # ConvNeXt's downsampling convs need 2x2 inputs in the last stage
    cfg = tiny_config(tmp_path, data={"source": "digits", "image_size": size},
                      teacher={"model": model, "kwargs": kwargs, "train": {"epochs": 3, "batch_size": 64}},
                      student=None,
                      stages=["search", "distill", "prune", "quantize", "export", "bench", "report"],
                      search={"space": space, "constraints": {"speedup": None}},
                      distill={"epochs": 2, "batch_size": 64, "teacher_pruned": False, "compare_baseline": False},
                      # latency_check off: whether a cut of a 0.08 ms model pays on host is timing noise
                      # (tests/test_prune.py tests the rule); here the family's cut itself is checked
                      prune={"flops_ratio": 1.5, "steps": 1, "latency_check": False,
                             "finetune": {"epochs": 1, "batch_size": 64}},
                      quantize={"method": "ptq", "calibration_size": 64},
                      export={"formats": ["onnx", "openvino"]})
    del cfg["student"]
    return edgekd.compress(cfg, ["host", "raspberry-pi-5"], quiet=True)


def _check(report: Any) -> None:
    manifest = json.loads((Path(report.run_dir) / "manifest.json").read_text())
    assert manifest["stages"]["teacher"]["metrics"]["training_recipe"]["name"] == "adamw"  # its family's recipe
    student, pruned = report.model("student"), report.model("pruned")
    assert pruned.macs < student.macs  # the prune stage cut the student
    ok = {(e["model"], e["format"], e["precision"]) for e in report.exports if e["status"] == "ok"}
    assert {("student", "onnx", "fp32"), ("quantized", "openvino", "int8")} <= ok
    for target, kind in (("host", "measured"), ("raspberry-pi-5", "predicted")):
        assert report.choices[target]["student"].kind == kind
        assert report.deployment[target].model  # a file to ship on each target


def test_a_vit_teacher_goes_through_every_stage_on_two_targets(tmp_path: Path) -> None:
    report = _run(tmp_path, "vision transformer")
    _check(report)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["convnext", "hierarchical transformer", "hybrid"])
def test_other_families_go_through_every_stage_on_two_targets(tmp_path: Path, family: str) -> None:
    model, kwargs, _ = TEACHERS[family]
    from edgekd.engines.models.build import build_model

    assert family_of(build_model(model, 10, kwargs)).name == family
    report = _run(tmp_path, family)
    _check(report)


def test_a_mixed_space_trains_the_best_of_each_family_and_ships_the_more_accurate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DisWOT favours the ViT teacher's own family; the best ResNet it weighed is trained too."""
    import edgekd.stages.context as context
    from edgekd.engines.search.spaces import ResNetParams, ViTParams, build_space
    from edgekd.engines.search.union import UnionSpace

    def small_union(cfg: Any, teacher: Any, size: int | None = None) -> UnionSpace:
        return UnionSpace([build_space("vit", ViTParams(**{k: v for k, v in TINY_VIT.items() if k != "name"}), size),
                           build_space("resnet", ResNetParams(depths=[1], widths=[8], stems=["3x3"]), size)])

    monkeypatch.setattr(context, "search_space", small_union)
    model, kwargs, _ = TEACHERS["vision transformer"]
    cfg = tiny_config(tmp_path, data={"source": "digits", "image_size": SIZE},
                      teacher={"model": model, "kwargs": kwargs, "train": {"epochs": 3, "batch_size": 64}},
                      stages=["search", "distill"], search={"constraints": {"speedup": None}},
                      distill={"epochs": 3, "batch_size": 64, "teacher_pruned": False, "compare_baseline": False,
                               "race": None})
    del cfg["student"]
    report = edgekd.compress(cfg, ["host"], quiet=True)
    choice = report.search["chosen"]
    assert len(choice["alternatives"]) == 1
    other = choice["alternatives"][0]
    assert {choice["genome"]["space"], other["space"]} == {"vit", "resnet"}
    sources = report.comparisons["student_sources"]["sources"]
    assert set(sources) == {"search", f"search_{other['space']}"}
    best = max(sources, key=lambda s: sources[s]["accuracy"])
    assert report.comparisons["student_sources"]["chosen"] == best
    assert report.model("student").model == sources[best]["model"]
