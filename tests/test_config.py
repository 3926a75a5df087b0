"""Config errors name the key, the value and the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_config

from edgekd.core.config_file import load_config
from edgekd.core.errors import ConfigError


def test_tiny_config_validates(tmp_path: Path) -> None:
    cfg = load_config(tiny_config(tmp_path))
    assert cfg.stages == ["distill", "export", "bench", "report"]
    assert cfg.distill.loss[0].name == "kl"  # Hinton KD is the default distillation loss


def test_unknown_key_is_named(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["distill"]["epohcs"] = 3
    with pytest.raises(ConfigError, match=r"distill\.epohcs: unknown key"):
        load_config(raw)


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["distil"] = {"epochs": 1}
    with pytest.raises(ConfigError, match=r"config: distil: unknown key; did you mean 'distill'\?"):
        load_config(raw)
    raw = tiny_config(tmp_path)
    raw["teacher"]["train"]["optimizer"]["lrr"] = 0.1  # three models deep
    raw["data"]["imag_size"] = 16  # beside a data set's own parameters
    with pytest.raises(ConfigError) as exc:
        load_config(raw)
    assert "teacher.train.optimizer.lrr: unknown key; did you mean 'lr'?" in exc.value.message
    assert "imag_size: unknown key; did you mean 'image_size'?" in exc.value.message
    raw = tiny_config(tmp_path)
    raw["zzz"] = 1
    with pytest.raises(ConfigError) as exc:
        load_config(raw)
    assert exc.value.message == "config: zzz: unknown key"  # nothing close: no guess


def test_unknown_key_in_override_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"distil: unknown key; did you mean 'distill'\?"):
        load_config(tiny_config(tmp_path), ["distil.epochs=2"])
    with pytest.raises(ConfigError, match=r"distill\.epocs: unknown key; did you mean 'epochs'\?"):
        load_config(tiny_config(tmp_path), ["distill.epocs=2"])


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["distill"]["epochs"] = "many"
    with pytest.raises(ConfigError, match=r"(?s)distill\.epochs: .*got 'many'"):
        load_config(raw)


def test_unknown_loss_lists_valid_names(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["distill"]["loss"] = [{"name": "kll"}]
    with pytest.raises(ConfigError) as exc:
        load_config(raw)
    msg = str(exc.value)
    assert "unknown distillation loss 'kll'" in msg and "did you mean 'kl'" in msg
    for name in ("ce", "kl", "relation", "attention"):
        assert name in msg


def test_unknown_loss_parameter_is_named(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["distill"]["loss"] = [{"name": "kl", "temprature": 4}]
    with pytest.raises(ConfigError, match=r"(?s)temprature: unknown key.*temperature"):
        load_config(raw)


def test_unknown_data_source_lists_choices(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["data"] = {"source": "cifar"}
    with pytest.raises(ConfigError, match=r"(?s)unknown data set 'cifar'.*digits, imagefolder, synthetic"):
        load_config(raw)


def test_unknown_backend_and_exporter(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["bench"]["runtimes"] = ["tflite"]
    with pytest.raises(ConfigError, match=r"(?s)bench\.runtimes.*unknown runtime 'tflite'.*onnxruntime"):
        load_config(raw)


def test_teacher_cannot_distill_from_itself(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["teacher"]["train"]["loss"] = [{"name": "kl"}]
    with pytest.raises(ConfigError, match="teacher cannot be distilled from itself"):
        load_config(raw)


def test_missing_student_without_search(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    del raw["student"]
    with pytest.raises(ConfigError, match="student: missing"):
        load_config(raw)


def test_duplicate_stage_and_order(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, stages=["report", "distill"])
    assert load_config(raw).stages == ["distill", "report"]  # always the fixed order
    raw["stages"] = ["distill", "distill"]
    with pytest.raises(ConfigError, match="stage listed twice"):
        load_config(raw)


def test_bad_yaml_gives_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("teacher:\n  model: resnet18\n  kwargs: {a: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML at line \d+"):
        load_config(p)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(p)


def test_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    p = tmp_path / "evil.yaml"
    p.write_text("teacher: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)


def test_overrides(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set the whole list"):
        load_config(tiny_config(tmp_path), ["distill.loss.0.temperature=2"])
    cfg = load_config(tiny_config(tmp_path), ["distill.epochs=7", "distill.loss=[{name: kl, temperature: 2}]",
                                              "seed=3"])
    assert cfg.distill.epochs == 7 and cfg.seed == 3
    assert cfg.distill.loss[0].params.temperature == 2
    cfg = load_config(cfg, ["distill.loss.0.temperature=3"])  # now the list exists
    assert cfg.distill.loss[0].params.temperature == 3
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(tiny_config(tmp_path), ["distill.epochs"])


def test_unreadable_files_and_overrides_are_config_errors(tmp_path: Path) -> None:
    """Escapes the fuzz test (test_config_fuzz.py) found: each was a traceback before."""
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match="cannot read config file .*dir.yaml: Is a directory"):
        load_config(tmp_path / "dir.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"teacher: \x80\xff")
    with pytest.raises(ConfigError, match="bin.yaml: not UTF-8 text"):
        load_config(tmp_path / "bin.yaml")
    (tmp_path / "tag.yaml").write_text("seed: !!float ;\n")  # PyYAML raises ValueError here
    with pytest.raises(ConfigError, match="tag.yaml: invalid YAML"):
        load_config(tmp_path / "tag.yaml")
    raw = tiny_config(tmp_path)
    with pytest.raises(ConfigError, match=r"--set 'name=\[': invalid YAML"):
        load_config(raw, ["name=["])
    with pytest.raises(ConfigError, match=r"--set 'seed=!!float': invalid YAML"):
        load_config(raw, ["seed=!!float"])
    with pytest.raises(ConfigError, match=r"stages has 4 item\(s\), no item 9"):
        load_config(raw, ["stages.9=prune"])
    with pytest.raises(ConfigError, match="cannot set a key inside a list"):
        load_config(raw, ["stages.²=prune"])  # '²'.isdigit(), but int('²') fails
    with pytest.raises(ConfigError, match="teacher.kwargs.channels.² is not in the config file"):
        load_config(raw, ["teacher.kwargs.channels.².x=1"])
    assert load_config({**raw, "distill": None}, ["distill.epochs=3"]).distill.epochs == 3  # empty section


def test_run_name_defaults_to_file_stem(tmp_path: Path) -> None:
    import yaml

    raw = tiny_config(tmp_path)
    del raw["name"]
    p = tmp_path / "my-model.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert load_config(p).name == "my-model"


def test_starter_and_examples_validate() -> None:
    root = Path(__file__).resolve().parents[1]
    for p in [root / "edgekd" / "templates" / "starter.yaml", *sorted((root / "examples").glob("*.yaml"))]:
        load_config(p)


def test_preprocess_keys_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.preprocess.mean.*3 values"):
        load_config(tiny_config(tmp_path, data={"source": "digits", "preprocess": {"mean": [0.5, 0.5]}}))
    with pytest.raises(ConfigError, match=r"data.preprocess.resize"):
        load_config(tiny_config(tmp_path, data={"source": "digits", "preprocess": {"resize": "stretch"}}))
    with pytest.raises(ConfigError, match=r"stream: true streams image folders"):
        load_config(tiny_config(tmp_path, data={"source": "digits", "stream": True}))


def test_partial_qat_section_keeps_the_qat_defaults(tmp_path: Path) -> None:
    """``quantize.train: {epochs: 1}`` once meant SGD lr 0.05 (the distill default), 100x the QAT rate."""
    from edgekd.core.config import Config

    cfg = Config.model_validate({**tiny_config(tmp_path), "quantize": {"train": {"epochs": 1, "optimizer": {"momentum": 0.5}}}})
    t = cfg.quantize.train
    assert (t.epochs, t.optimizer.lr, t.optimizer.weight_decay, t.optimizer.momentum) == (1, 5e-4, 0.0, 0.5)
    assert Config.model_validate(cfg.model_dump(mode="json")).quantize == cfg.quantize  # a saved config reads back the same
    assert Config.model_validate(tiny_config(tmp_path)).quantize.train.optimizer.lr == 5e-4


def test_speedup_per_target() -> None:
    """A GPU at batch 1 has a latency floor: the speed-up can be asked per target, by name or alias."""
    from edgekd.core.profiles import resolve_target
    from edgekd.engines.budgets import DEFAULT_SPEEDUP, speedup_for

    def cfg(speedup):
        return load_config({"name": "t", "data": {"source": "digits"}, "teacher": {"model": "resnet18"},
                            "search": {"constraints": {"speedup": speedup}}}).search.constraints.speedup

    per = cfg({"jetson": 2, "default": 5})
    k = {t: speedup_for(per, resolve_target(t)[0]) for t in ("jetson-orin-nano", "raspberry-pi-5", "host")}
    assert k == {"jetson-orin-nano": 2.0, "raspberry-pi-5": 5.0, "host": 5.0}
    assert speedup_for(cfg({"rpi5": 3}), resolve_target("host")[0]) == DEFAULT_SPEEDUP  # no default entry: 4
    assert speedup_for(cfg(6), resolve_target("host")[0]) == 6.0
    with pytest.raises(ConfigError, match=r"search.constraints.speedup: 'jetsn' is not a target"):
        cfg({"jetsn": 2})


def test_the_starter_shows_the_defaults_and_the_readme_agrees() -> None:
    """`edgekd init` writes the pipeline a config with only data and teacher runs: every value the
    starter sets outside those two is the default; the README's config summary says the same."""
    from edgekd.core.config import Config
    from edgekd.core.config_file import read_yaml

    root = Path(__file__).resolve().parents[1]
    starter = read_yaml(root / "edgekd" / "templates" / "starter.yaml")
    written = Config.model_validate(starter).model_dump(mode="json")
    bare = Config.model_validate({k: starter[k] for k in ("name", "data", "teacher")}).model_dump(mode="json")
    differs = [k for k in bare if k not in ("name", "data", "teacher") and written[k] != bare[k]]
    assert not differs, {k: (written[k], bare[k]) for k in differs}
    assert "constraints" not in starter["search"]  # a written speed-up is a wall: the starter keeps the goal
    readme = (root / "README.md").read_text()
    d = bare
    assert f"importance: {{name: {d['prune']['importance']['name']}}}" in readme
    assert f"flops_ratio: {d['prune']['flops_ratio']}, steps: {d['prune']['steps']}" in readme
    assert f"max_accuracy_drop: {d['report']['max_accuracy_drop']}" in readme
    assert f"accuracy_slack: {d['report']['accuracy_slack']}" in readme


def test_bench_backends_is_read_as_runtimes_with_a_deprecation_message(tmp_path: Path, caplog) -> None:
    raw = tiny_config(tmp_path)
    raw["bench"] = {"backends": ["onnxruntime"]}
    with caplog.at_level("WARNING"):
        assert load_config(raw).bench.runtimes == ["onnxruntime"]
    assert "bench.backends is deprecated: rename it to bench.runtimes" in caplog.text
    raw["bench"] = {"backends": ["onnxruntime"], "runtimes": ["openvino"]}
    with pytest.raises(ConfigError, match="bench.backends and bench.runtimes are both set"):
        load_config(raw)
