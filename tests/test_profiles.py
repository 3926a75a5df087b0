"""Hardware profiles: every shipped profile validates, aliases resolve, bad files are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.core.errors import ProfileError
from edgekd.core.profiles import available_profiles, load_profile_file, resolve_target

DEVICES = ["jetson-orin-nano", "jetson-agx-orin", "jetson-nano", "raspberry-pi-5", "intel-x86-cpu"]


def test_every_shipped_profile_loads_with_its_numbers_and_sources() -> None:
    profiles = available_profiles()
    assert {"host", *DEVICES} <= set(profiles)
    for name in DEVICES:
        p = profiles[name]
        assert p.sources, name
        assert set(p.peak_gops) <= set(p.precisions) and p.peak_gops, name
        assert p.memory_bandwidth_gbs and p.memory_gb and p.latency_budget_ms > 0, name
        assert p.default_precision in p.precisions, name
        assert p.channel_multiple.get(p.default_precision), name  # pruning rounds channels to it
    assert profiles["host"].measured_here and not any(profiles[d].measured_here for d in DEVICES)
    assert "int8" not in profiles["jetson-nano"].precisions and profiles["jetson-nano"].max_onnx_opset == 13


@pytest.mark.parametrize(("alias", "name"), [("jetson", "jetson-orin-nano"), ("rpi", "raspberry-pi-5"),
                                             ("agx", "jetson-agx-orin"), ("intel", "intel-x86-cpu")])
def test_aliases_resolve_and_say_so(alias: str, name: str) -> None:
    prof, note = resolve_target(alias)
    assert prof.name == name and note == f"target {alias!r} resolved to {name!r}"


def test_unknown_target_lists_names_and_aliases() -> None:
    with pytest.raises(ProfileError, match=r"(?s)unknown target 'jetsn'.*host.*jetson→jetson-orin-nano"):
        resolve_target("jetsn")


def test_user_profile_by_path_and_bad_profiles(tmp_path: Path) -> None:
    good = tmp_path / "my-board.yaml"
    good.write_text("name: my-board\ndescription: x\nkind: cpu\nruntimes: [onnxruntime]\nprecisions: [fp32]\n"
                    "peak_gops: {fp32: 10}\nmemory_bandwidth_gbs: 5\n")
    assert resolve_target(str(good))[0].name == "my-board"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ndescription: x\nkind: tpu\nruntimes: [onnxruntime]\nprecisions: [fp32]\nwarp: 9\n")
    with pytest.raises(ProfileError, match=r"(?s)bad\.yaml: kind: .*warp: unknown key"):
        load_profile_file(bad)
    bad.write_text("name: b\ndescription: x\nkind: cpu\nruntimes: [onnxruntime]\nprecisions: [fp32]\n"
                   "peak_gops: {int8: 5}\n")
    with pytest.raises(ProfileError, match="'int8' is used but not listed in precisions"):
        load_profile_file(bad)
    bad.write_text("name: b\ndescription: x\nkind: cpu\nruntimes: [onnxruntime]\nprecisions: [fp32]\n"
                   "channel_multiple: {fp16: 8}\n")
    with pytest.raises(ProfileError, match="'fp16' is used but not listed in precisions"):
        load_profile_file(bad)
    with pytest.raises(ProfileError, match="profile file not found"):
        resolve_target(str(tmp_path / "none.yaml"))
