"""DisWOT scores and the search: determinism, invariances, self-similarity, budgets, bad spaces,
the resnet stem gene, how small each default space gets, and the score/latency Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TEACHER, free_port, tiny_config

import edgekd
from edgekd.core.config import LossTerm, SearchConfig
from edgekd.core.config_file import load_config
from edgekd.core.errors import ConfigError, SearchError
from edgekd.core.registries import SEARCH_SPACES
from edgekd.engines.models.build import build_model
from edgekd.engines.models.stats import count_macs, count_params
from edgekd.engines.search.evaluate import Candidate
from edgekd.engines.search.evolution import Searcher
from edgekd.engines.search.scoring import compare, signature
from edgekd.engines.search.spaces import ResNetParams, ResNetSpace, build_space
from edgekd.engines.search.tradeoff import mark_front, pareto_flags
from edgekd.engines.train.losses import LossInputs, build_loss_terms


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)


def _net(seed: int, channels=(8, 16, 32, 64)):
    torch.manual_seed(seed)
    return build_model("resnet18", 10, {"layers": [1, 1, 1, 1], "channels": list(channels)})


def test_scores_are_deterministic_for_a_seed(batch) -> None:
    x, y = batch
    t = signature(_net(0, (16, 32, 64, 128)), x, y)
    a = compare(t, signature(_net(1), x, y))
    b = compare(t, signature(_net(1), x, y))
    assert a == b
    c = compare(t, signature(_net(2), x, y))
    assert c != a  # another init, another score


def test_scores_are_invariant_to_batch_order(batch) -> None:
    x, y = batch
    p = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(5))
    t, s = _net(0, (16, 32, 64, 128)), _net(1)
    a = compare(signature(t, x, y), signature(s, x, y))
    b = compare(signature(t, x[p], y[p]), signature(s, x[p], y[p]))
    assert a.semantic_distance == pytest.approx(b.semantic_distance, rel=1e-4, abs=1e-7)
    assert a.relation_distance == pytest.approx(b.relation_distance, rel=1e-4, abs=1e-7)


def test_model_against_itself_gets_the_best_score(batch) -> None:
    x, y = batch
    t = _net(0, (16, 32, 64, 128))
    self_score = compare(signature(t, x, y), signature(t, x, y))
    assert self_score.semantic_distance == pytest.approx(0, abs=1e-9)
    assert self_score.relation_distance == pytest.approx(0, abs=1e-9)
    other = compare(signature(t, x, y), signature(_net(1), x, y))
    assert other.semantic_distance > 0 and other.relation_distance > 0


def test_diswot_loss_is_zero_for_identical_outputs() -> None:
    (_, loss), = build_loss_terms([LossTerm(name="diswot")])
    z, f, y = torch.randn(16, 10), torch.randn(16, 8, 2, 2), torch.randint(0, 10, (16,))
    assert loss(LossInputs(z, y, z.clone(), f, f.clone())).item() == pytest.approx(0, abs=1e-6)
    assert loss(LossInputs(z, y, torch.randn(16, 10), f, torch.randn(16, 4, 2, 2))).item() > 0


def test_bad_space_definitions_are_clear(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, stages=["search"])
    raw["search"] = {"space": {"name": "resnet", "depths": []}}
    with pytest.raises(ConfigError, match=r"(?s)search\.space.*depths.*needs at least one choice"):
        load_config(raw)
    raw["search"] = {"space": {"name": "resnet", "blocks": ["dense"]}}
    with pytest.raises(ConfigError, match="unknown block type"):
        load_config(raw)
    raw["search"] = {"space": {"name": "resnet", "stems": ["5x5"]}}
    with pytest.raises(ConfigError, match=r"unknown stem \['5x5'\]; choose 7x7 and/or 3x3"):
        load_config(raw)
    raw["search"] = {"space": {"name": "deit"}}
    with pytest.raises(ConfigError, match=r"unknown search space 'deit'.*resnet"):
        load_config(raw)
    raw["search"] = {"space": {"name": "vit", "widths": [100], "heads": [3]}}
    with pytest.raises(ConfigError, match=r"every width must divide by every head count"):
        load_config(raw)
    cfg = load_config({**raw, "search": {"space": {"name": "timm", "candidates": [{"model": "resnet1000"}]}}})
    with pytest.raises(SearchError, match="unknown timm models"):
        build_space("timm", cfg.search.space.params)


def _fake_searcher(cfg: SearchConfig, seed: int, limit: float | None = None, measure=None):  # noqa: ANN001
    """A searcher over a 4^4 space whose 'distance' is known, to test the algorithm itself."""
    space = ResNetSpace(ResNetParams(depths=[1, 2, 3, 4], widths=[16], blocks=["basic"], stems=["7x7"]))
    target = {"depth1": 3, "depth2": 1, "depth3": 4, "depth4": 2}
    calls = []

    def evaluate(g):
        calls.append(space.key(g))
        d = sum(abs(g[k] - v) for k, v in target.items()) + 0.5
        size = sum(g[f"depth{i}"] for i in range(1, 5))
        viol = [f"params {size} > {limit}"] if limit is not None and size > limit else []
        return Candidate(space.key(g), "resnet18", {}, g, size, size, d, d / 10, violations=viol)

    return Searcher(space, evaluate, cfg, seed, measure=measure), calls


def _search_worker(rank: int, port: int, out: str) -> None:
    """One rank of a 2-process search: scores its share, times only if rank 0 (records what it timed)."""
    import os

    import torch.distributed as tdist

    if rank >= 0:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        tdist.init_process_group("gloo", rank=rank, world_size=2)
    timed: list[str] = []

    def measure(c: Candidate) -> None:  # a 'latency' that is the candidate's size; over 9 is over budget
        timed.append(c.key)
        c.latency = {"host": {"ms": float(c.params)}}
        c.violations = [f"latency {c.params} > 9"] if c.params > 9 else []

    s, calls = _fake_searcher(SearchConfig(population=8, generations=3, strategy="evolution"), seed=3, measure=measure)
    ranked = [(c.key, c.latency, c.violations) for c in s.run()]
    torch.save({"timed": timed, "calls": calls, "ranked": ranked}, out)
    if rank >= 0:
        tdist.destroy_process_group()


def test_under_torchrun_search_splits_scoring_but_rank0_alone_times(tmp_path: Path) -> None:
    """Timing on the cores another rank computes on reads slow: candidates are scored by every rank
    and timed by rank 0 alone, and every rank ends with the one-process ranking, latencies included."""
    import torch.multiprocessing as mp

    port = free_port()
    mp.spawn(_search_spawned, args=(port, str(tmp_path)), nprocs=2, join=True)
    _search_worker(-1, 0, str(tmp_path / "one"))  # one process, no group
    one = torch.load(tmp_path / "one")
    r0, r1 = (torch.load(tmp_path / f"rank{r}") for r in (0, 1))
    assert r1["timed"] == []  # rank 1 scored its share and timed nothing
    assert sorted(r0["timed"]) == sorted(one["timed"])  # rank 0 timed what one process times
    assert r0["calls"] and r1["calls"] and sorted(r0["calls"] + r1["calls"]) == sorted(one["calls"])
    assert r0["ranked"] == r1["ranked"] == one["ranked"]
    assert any(v for _, _, v in one["ranked"]) and any(lat for _, lat, _ in one["ranked"])


def _search_spawned(rank: int, port: int, folder: str) -> None:
    _search_worker(rank, port, f"{folder}/rank{rank}")


def test_evolution_is_deterministic_and_finds_the_optimum() -> None:
    cfg = SearchConfig(population=12, generations=10, strategy="evolution")
    s1, calls1 = _fake_searcher(cfg, seed=3)
    r1 = s1.run()
    s2, calls2 = _fake_searcher(cfg, seed=3)
    s2.run()
    assert calls1 == calls2  # same seed, same candidates in the same order
    assert len(calls1) == len(set(calls1))  # the cache: nobody is scored twice
    assert r1[0].key == "block=basic,stem=7x7,depth1=3,depth2=1,depth3=4,depth4=2,width=16"
    assert len(calls1) < 256  # it did not simply enumerate


def test_infeasible_candidates_are_never_chosen() -> None:
    cfg = SearchConfig(population=12, generations=6, strategy="evolution")
    s, _ = _fake_searcher(cfg, seed=0, limit=8)
    ranked = s.run()
    assert not ranked[0].violations
    assert sum(ranked[0].genome[f"depth{i}"] for i in range(1, 5)) <= 8
    assert all(c.violations for c in ranked if sum(c.genome[f"depth{i}"] for i in range(1, 5)) > 8)


def test_exhaustive_for_small_spaces() -> None:
    s, calls = _fake_searcher(SearchConfig(population=100, generations=2), seed=0)
    assert s.strategy() == "exhaustive"
    s.run()
    assert len(calls) == 256


def _search_cfg(tmp_path: Path, **constraints):
    raw = tiny_config(tmp_path, stages=["search"])
    raw.pop("student")
    raw["search"] = {"space": {"name": "resnet", "depths": [1], "widths": [8, 16, 32], "stems": ["7x7"]},
                     "batch_size": 32,
                     "constraints": {"speedup": None, **constraints}}  # tiny teachers: no relative budget
    return raw


def test_relative_budget_binds_on_the_teachers_best_runtime(tmp_path: Path) -> None:
    raw = _search_cfg(tmp_path)
    raw["teacher"] = {"model": "resnet18"}  # 37 M MACs at 32 px: candidates must be 1.5x faster than it
    raw["search"]["constraints"] = {"speedup": 1.5}
    report = edgekd.search(raw, ["host"], quiet=True)
    budget = report.search["budgets"]
    teacher_ms = json.loads((tmp_path / "tiny" / "budgets.json").read_text())["budgets"]["teacher"]["host"]["ms"]
    assert budget["latency_ms"]["host"] == pytest.approx(teacher_ms / 1.5, rel=1e-4)
    assert budget["basis"]["host"].startswith("teacher ") and budget["basis"]["host"].endswith("/ 1.5")
    assert report.search["chosen"]["latency"]["host"]["ms"] <= teacher_ms / 1.5
    host = next(t for t in report.targets if t["name"] == "host")
    assert host["latency_budget_ms"] == budget["latency_ms"]["host"]  # the report judges by the same budget
    raw["search"]["constraints"] = {"speedup": 1000.0}
    with pytest.raises(SearchError, match=r"cannot be reached on host .*host: budget [0-9.e-]+ ms \(teacher [0-9.]+ ms "
                                          r"\(measured, .*\) / 1000\), fastest candidate [0-9.]+ ms \(measured; at "
                                          r"most [0-9.]+× the teacher\)"):
        edgekd.search(raw, ["host"], quiet=True)


def test_search_stage_chooses_a_feasible_student(tmp_path: Path) -> None:
    report = edgekd.search(_search_cfg(tmp_path, max_params_m=0.2), ["host"], quiet=True)
    chosen = report.search["chosen"]
    assert chosen["params"] <= 0.2e6
    assert report.search["evaluated"] == 3 and report.search["strategy"] == "exhaustive"
    assert any(not c["feasible"] for c in report.search["top"])  # the wide one is over budget
    for c in report.search["top"]:
        assert {"semantic", "relation", "combined", "params", "macs"} <= set(c)
    assert (tmp_path / "tiny" / "search" / "choice.json").exists()


def test_search_stage_writes_the_front_and_the_teacher_point(tmp_path: Path) -> None:
    from edgekd.engines.reporting.markdown import render_markdown
    from edgekd.engines.reporting.search_plots import search_panels

    raw = _search_cfg(tmp_path, max_params_m=0.2)
    raw["search"]["space"]["stems"] = ["7x7", "3x3"]  # 6 candidates, the two widest over the params budget
    report = edgekd.search(raw, ["host"], quiet=True)
    cands = json.loads((tmp_path / "tiny" / "search" / "candidates.json").read_text())
    timed = [c for c in cands if "host" in c["latency"]]
    assert len(cands) == 6 and 0 < len(timed) < 6
    assert all(c["pareto"] == {"host": False} for c in cands if c not in timed)  # over the size budget: not timed
    front = report.search["front"]["host"]
    on = [c for c in timed if c["pareto"]["host"]]
    assert front == [c["key"] for c in sorted(on, key=lambda c: c["latency"]["host"]["ms"])] and front
    for c in timed:  # off the front: something on it scores at least as high and runs at least as fast
        if not c["pareto"]["host"]:
            assert any(o["combined"] >= c["combined"] and o["latency"]["host"]["ms"] <= c["latency"]["host"]["ms"]
                       for o in on)
    tp = report.search["teacher_point"]
    assert tp["combined"] == 0.0 and tp["latency"]["host"]["kind"] == "measured" and tp["latency"]["host"]["ms"] > 0
    assert tp["params"] == count_params(build_model(TEACHER["model"], 10, TEACHER["kwargs"]))
    assert tp["macs"] > 0 and all(c["combined"] <= 0 for c in cands)  # the teacher tops the scale
    assert len(report.search["points"]["host"]) == len(timed)
    md = render_markdown(report)
    assert f"host: front: {len(front)} candidates; chosen {report.search['chosen']['key']} (score " in md
    assert "; teacher at " in md and [t for t, _ in search_panels(report)] == ["host"]


def test_no_feasible_candidate_names_the_constraint(tmp_path: Path) -> None:
    with pytest.raises(SearchError, match=r"(?s)params ≤ 0.001M \(smallest reached 0\.\d+M\)"):
        edgekd.search(_search_cfg(tmp_path, max_params_m=0.001), ["host"], quiet=True)
    with pytest.raises(SearchError, match=r"host: budget 1e-05 ms \(search.constraints.latency_ms\), fastest candidate "
                                          r"[0-9.]+ ms \(measured"):
        edgekd.search(_search_cfg(tmp_path, latency_ms=0.00001), ["host"], quiet=True)


def test_search_feeds_distill(tmp_path: Path) -> None:
    raw = _search_cfg(tmp_path, max_params_m=0.2)
    raw["stages"] = ["search", "distill"]
    raw["teacher"] = {**TEACHER, "train": {"epochs": 1}}
    raw["distill"] = {"epochs": 1, "teacher_pruned": False}  # the searched student alone (the pruned teacher: test_distill)
    report = edgekd.compress(raw, ["host"], quiet=True)
    assert report.model("student").params == report.search["chosen"]["params"]


def test_a_chosen_student_no_faster_than_the_teacher_is_said_by_latency_not_parameters() -> None:
    """Judged on the timed latencies: a student with more parameters but a faster time is not warned about."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from edgekd.core.estimates import LatencyEstimate
    from edgekd.core.progress import Reporter
    from edgekd.stages.search import _warn_if_not_faster

    buf = io.StringIO()
    ctx = SimpleNamespace(reporter=Reporter(console=Console(file=buf, width=400)))
    teacher = {n: LatencyEstimate(ms=ms, kind="measured", runtime="onnxruntime", precision="fp32", target=n) for n, ms in
               (("host", 0.5), ("jetson-orin-nano", 0.2))}
    _warn_if_not_faster(ctx, {"host": {"ms": 0.1}, "jetson-orin-nano": {"ms": 0.25}}, teacher)
    said = " ".join(buf.getvalue().split())
    assert "on jetson-orin-nano the chosen student reads 0.25 ms, the teacher 0.2 ms: it will not be faster" in said
    assert "on host" not in said


def _stage_outputs(model: torch.nn.Module, size: int = 32) -> list[int]:
    """Output channels of layer1..layer4, from a real forward pass."""
    seen: list[int] = []
    hooks = [getattr(model, f"layer{i}").register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
             for i in range(1, 5)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(("block", "stem", "width"), [("basic", "7x7", 8), ("basic", "3x3", 8),
                                                      ("bottleneck", "3x3", 16), ("basic", "3x3", 24)])
def test_resnet_stem_gene_builds_the_channels_the_genome_says(block: str, stem: str, width: int) -> None:
    space = ResNetSpace(ResNetParams(blocks=["basic", "bottleneck"]))
    genome = {"block": block, "stem": stem, "depth1": 1, "depth2": 2, "depth3": 1, "depth4": 1, "width": width}
    name, kwargs = space.model(genome)
    kwargs = json.loads(json.dumps(kwargs))  # as model.json stores them: plain JSON, rebuilt without pickles
    model = build_model(name, 10, kwargs)
    convs = [m for m in model.conv1.modules() if isinstance(m, torch.nn.Conv2d)]
    if stem == "7x7":  # timm's default stem: one 7×7 conv, 64 channels whatever the width
        assert "stem_width" not in kwargs and [(c.kernel_size, c.out_channels) for c in convs] == [((7, 7), 64)]
    else:  # timm's deep stem: width/2, width/2, width
        assert [(c.kernel_size, c.out_channels) for c in convs] == [((3, 3), width // 2)] * 2 + [((3, 3), width)]
    expansion = 4 if block == "bottleneck" else 1
    assert _stage_outputs(model) == [expansion * width * 2**i for i in range(4)]
    assert [len(getattr(model, f"layer{i + 1}")) for i in range(4)] == [1, 2, 1, 1]


def test_genomes_from_before_the_stem_gene_still_build() -> None:
    space = ResNetSpace(ResNetParams())
    assert space.size() == 192  # 2 stems × 2^4 depths × 6 widths: enumerated within the default budget of 216
    old = {"block": "basic", "depth1": 1, "depth2": 1, "depth3": 1, "depth4": 1, "width": 16}
    name, kwargs = space.model(old)
    assert "stem_type" not in kwargs and space.key(old).startswith("block=basic,stem=7x7,")
    old_kwargs = {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128], "stem_width": 16}  # an old choice.json
    a, b = build_model(name, 10, old_kwargs), build_model(name, 10, kwargs)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


SMALLEST = {  # each default space's smallest candidate (by its choices; the timm list's is named)
    "resnet": {"block": "basic", "stem": "3x3", "depth1": 1, "depth2": 1, "depth3": 1, "depth4": 1, "width": 8},
    "mobilenetv3": {"size": "small", "width": 0.35, "depth": 0.5},
    "efficientnet": {"width": 0.35, "depth": 0.5},
    "timm": "mobilenetv3_small_050",
}


@pytest.fixture(scope="module")
def resnet18_macs() -> int:
    return count_macs(build_model("resnet18", 10), 32)


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_every_default_space_reaches_ten_times_fewer_macs_than_resnet18(name: str, resnet18_macs: int) -> None:
    space = build_space(name, SEARCH_SPACES.entry(name).params())
    genome = SMALLEST[name]
    if name == "timm":
        genome = {"index": [c.model for c in space.candidates].index(genome)}
    for g in space.genes:
        assert genome[g.name] in g.choices, (g.name, g.choices)  # a default choice, not a hand-made one
    model_name, kwargs = space.model(genome)
    macs = count_macs(build_model(model_name, 10, kwargs), 32)
    assert resnet18_macs / macs >= 10, f"{name}: {space.key(genome)} {macs / 1e6:.2f} M MACs"


def test_pareto_flags_keep_the_undominated_and_ties() -> None:
    cases = [((-1.0, 1.0), True),
             ((-2.0, 0.5), False),  # the same score as (-2.0, 0.4), slower
             ((-1.5, 2.0), False),  # worse and slower than (-1.0, 1.0)
             ((-1.0, 1.0), True),  # an exact tie: neither dominates the other
             ((-1.0, 1.5), False),  # the same score as (-1.0, 1.0), slower
             ((-3.0, 0.5), False),
             ((-0.5, 3.0), True),  # the best score
             (None, False),  # no latency: not compared
             ((-2.0, 0.4), True)]  # the fastest
    assert pareto_flags([p for p, _ in cases]) == [on for _, on in cases]
    assert pareto_flags([]) == [] and pareto_flags([None]) == [False]

    def cand(key, score, ms):
        c = Candidate(key, "m", {}, {}, 1, 1, 0.0, 0.0, combined=score)
        if ms is not None:
            c.latency = {"host": {"ms": ms, "kind": "measured"}}
        return c

    cands = [cand("a", -1.0, 2.0), cand("b", -2.0, 1.0), cand("c", -3.0, 3.0), cand("d", -0.5, None)]
    assert mark_front(cands, ["host"]) == {"host": ["b", "a"]}  # fastest first; d has no latency
    assert [c.pareto for c in cands] == [{"host": True}, {"host": True}, {"host": False}, {"host": False}]
