"""Racing the student sources: a run clearly behind the leader at a rung stops, one within the
margin goes on, and every curve and stop is recorded."""

from __future__ import annotations

from edgekd.engines.train.race import Race


def _run(race: Race, name: str, curve: list[float]) -> int:
    """Feed ``curve`` epoch by epoch until the race stops the run; the epochs it trained."""
    for epoch, acc in enumerate(curve, 1):
        if race.judge(name, epoch, acc):
            return epoch
    return len(curve)


def test_rungs_are_fractions_of_the_epochs_and_never_the_last() -> None:
    assert Race(10, (0.2, 0.5), 1.0).rungs == [2, 5]
    assert Race(3, (0.2, 0.5, 1.0), 1.0).rungs == [1, 2]
    assert Race(1, (0.5,), 1.0).rungs == []  # one epoch: nothing to judge before the end


def test_a_run_behind_by_more_than_the_margin_stops_at_the_rung() -> None:
    race = Race(10, (0.2, 0.5), 1.0)
    assert _run(race, "search", [80, 90, 93, 94, 95, 96, 96, 97, 97, 97]) == 10  # the first run has no rival
    assert _run(race, "close", [79, 89.5, 92, 93, 94, 95, 96, 97, 98, 98]) == 10  # 0.5 behind at rung 2: goes on
    assert _run(race, "far", [60, 70, 80, 90, 99, 99, 99, 99, 99, 99]) == 2  # 20 behind at epoch 2
    stop = race.stopped["far"]
    assert stop["epoch"] == 2 and stop["leader"] == "search" and stop["leader_accuracy"] == 90.0
    assert "more than 1 points behind" in stop["why"]
    rec = race.record()
    assert rec["curves"]["far"] == [60, 70] and len(rec["curves"]["close"]) == 10 and "close" not in rec["stopped"]


def test_the_leader_is_judged_on_its_best_so_far_at_the_same_epoch() -> None:
    race = Race(6, (0.5,), 2.0)
    _run(race, "a", [50, 60, 61, 99, 99, 99])  # a's late jump does not count at epoch 3
    assert _run(race, "b", [55, 58, 59.5, 60, 60, 60]) == 6  # 1.5 behind a's 61 at epoch 3: within 2 points
    assert _run(race, "c", [40, 50, 58.9, 99, 99, 99]) == 3  # 2.1 behind


def test_distill_races_its_runs_and_keeps_every_curve(tmp_path) -> None:
    """A tiny run: the student with the teacher, then without it, raced at a quarter of the epochs
    with no margin: whichever is behind there stops, and the record says where and why."""
    import json

    from conftest import tiny_config

    import edgekd

    cfg = tiny_config(tmp_path, stages=["distill"])
    cfg["distill"] = {"epochs": 4, "batch_size": 64, "compare_baseline": True, "race": {"at": [0.25], "margin": 0.0},
                      "optimizer": {"lr": 0.01}}
    edgekd.compress(cfg, ["host"], quiet=True)
    m = json.loads((tmp_path / "tiny" / "manifest.json").read_text())["stages"]["distill"]["metrics"]
    race = m["race"]
    assert race["rungs"] == [1] and set(race["curves"]) == {"configured", "configured (no teacher)"}
    first, second = race["curves"]["configured"], race["curves"]["configured (no teacher)"]
    assert len(first) == 4  # the first run has no rival: it finishes
    if race["stopped"]:  # the second was behind at epoch 1: it stopped there, and says so
        stop = race["stopped"]["configured (no teacher)"]
        assert len(second) == 1 and stop["epoch"] == 1 and stop["leader_accuracy"] > stop["accuracy"]
        assert m["baseline"]["stopped"]["epoch"] == 1 and len(m["baseline"]["history"]) == 1
    else:
        assert len(second) == 4 and second[0] >= first[0]  # not behind at the rung: it went on
