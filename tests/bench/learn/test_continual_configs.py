from __future__ import annotations

import math

import pytest
import torch

from adaptd.adapters.continual import strategies
from bench.learn.continual import configs, data, jobs, permuted

KINDS = ("permuted", "split", "market")


def test_choose_takes_the_best_validation_score_and_the_first_of_ties() -> None:
    grid = [{"c": 0.1}, {"c": 1.0}, {"c": 10.0}]
    assert configs.choose(grid, [0.5, 0.9, 0.7], higher_is_better=True) == 1
    assert configs.choose(grid, [0.5, 0.9, 0.7], higher_is_better=False) == 0
    assert configs.choose(grid, [0.8, 0.8, 0.1], higher_is_better=True) == 0
    assert configs.choose(grid, [math.nan, 0.2, math.nan], higher_is_better=True) == 1
    assert configs.choose(grid, [math.nan, 0.2, math.nan], higher_is_better=False) == 1
    with pytest.raises(ValueError, match="candidates"):
        configs.choose(grid, [0.1], higher_is_better=True)


def test_every_registered_strategy_is_configured_with_arguments_it_takes() -> None:
    for name in strategies():
        assert name in configs.TABLE, f"{name} has no entry in configs.TABLE"
        for kind in KINDS:
            assert configs.unknown_options(name, kind) == [], (name, kind)
            cls = strategies()[name]
            cls(**configs.options(name, kind, quick=True, seed=0))  # builds


def test_memory_budgets_are_equal_across_the_strategies_that_store_examples() -> None:
    for kind in KINDS:
        budget = configs.MEMORY[kind]
        for name in ("replay", "coreset", "agem"):
            assert configs.options(name, kind)["capacity"] == budget
        gem = configs.options("gem", kind)
        covered = gem["max_tasks"] or 5
        assert gem["memory_per_task"] * covered == budget


def test_grid_is_every_combination_and_quick_keeps_the_first_two_values() -> None:
    full = configs.grid("online_ewc", "permuted")
    assert len(full) == len(configs.TABLE["online_ewc"].tune["lam"]) * 2
    assert {"lam", "decay"} == set(full[0])
    assert len(configs.grid("online_ewc", "permuted", quick=True)) == 4
    assert configs.grid("naive", "permuted") == [{}]
    assert configs.options("si", "permuted", {"c": 3.0})["c"] == 3.0
    assert configs.options("replay", "permuted", seed=7)["seed"] == 7
    assert "seed" not in configs.options("lwf", "permuted", seed=7)  # LwF takes no seed
    with pytest.raises(ValueError, match="kind"):
        configs.options("naive", "rotated")


def _garbage_test_images(monkeypatch: pytest.MonkeyPatch) -> None:
    real = data.load("digits")
    g = torch.Generator().manual_seed(1)
    garbage = real._replace(
        test_x=torch.randint(0, 17, real.test_x.shape, dtype=torch.uint8, generator=g),
        test_y=torch.randint(0, 10, real.test_y.shape, generator=g),
    )
    monkeypatch.setattr(data, "load", lambda name: garbage)


def test_tuning_sees_validation_data_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The benchmark's test images replaced by noise: every validation score, hence every
    # choice, stays the same, while the test runs (which do read them) change.
    config = {**permuted.PROTOCOL, **permuted.QUICK}

    def tune() -> tuple[dict, dict]:
        tuning, records, _ = jobs.tune_then_run(
            permuted._job,
            ["digits"],
            ["naive", "si", "replay"],
            kind="permuted",
            base={"config": config},
            quick=True,
            seed=0,
            workers=1,
            higher_is_better=True,
            criterion="test",
        )
        return tuning["digits"], records["digits"]

    clean_tuning, clean_records = tune()
    _garbage_test_images(monkeypatch)
    dirty_tuning, dirty_records = tune()
    assert set(clean_tuning) == {"si", "replay"}
    assert clean_tuning == dirty_tuning
    assert clean_tuning["si"]["chosen"] == dirty_tuning["si"]["chosen"]
    clean = clean_records["naive"]["metrics"]["average_accuracy"]
    assert clean != dirty_records["naive"]["metrics"]["average_accuracy"]
    assert dirty_records["si"]["options"]["c"] == clean_tuning["si"]["chosen"]["c"]
