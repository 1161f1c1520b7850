from __future__ import annotations

import json

import pytest
import torch

from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import EpisodeSampler, rotated_digits
from bench.learn import digits


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def quick() -> dict:
    torch.set_num_threads(1)
    return digits.run(quick=True, seed=3)


def test_nearest_neighbour_is_the_closest_support_example_not_the_class_mean() -> None:
    # Class 0 has one support point next to the query and one far away: its mean is farther
    # from the query than class 1's only point, but its nearest member is closer.
    support_x = torch.tensor([[0.0], [10.0], [2.0]])
    support_y = torch.tensor([0, 0, 1])
    query_x, query_y = torch.tensor([[0.5], [2.1]]), torch.tensor([0, 1])
    task = Task(support_x, support_y, query_x, query_y)
    assert digits.nearest_neighbour_accuracies([task]) == [1.0]
    mean = digits.test(digits.make_learner("nearest_mean", 1, digits.PROTOCOL, 0), [task])
    assert mean["accuracy"] == 0.5  # the first query is nearer class 1's mean (2 < 5 - 0.5)


def test_split_is_disjoint_and_seeded(quick: dict) -> None:
    split = quick["split"]
    parts = [set(split[k]) for k in ("train", "val", "test")]
    assert [len(p) for p in parts] == [24, 6, 10]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] <= set(range(40))
    assert split["seed"] == 3


def test_quick_run_reports_every_model_at_both_shots(quick: dict) -> None:
    json.dumps(quick)
    assert set(quick["results"]) == {"1", "5"}
    for shots, table in quick["results"].items():
        assert tuple(table) == digits.MODELS
        for model, r in table.items():
            assert r["episodes"] == digits.QUICK["test_episodes"], (shots, model)
            assert 0.0 <= r["accuracy"] <= 1.0 and r["ci95"] >= 0.0
            if model in digits.BASELINES:
                assert "updates" not in r
            else:
                assert 1 <= r["updates"] <= digits.QUICK["max_updates"]
                assert r["best_update"] in {int(s) for s in r["val_curve"]}
                assert r["val_accuracy"] == max(r["val_curve"].values())
    # Raw pixels already separate 5 digit classes well: the baselines are far above chance.
    assert quick["results"]["5"]["nearest_mean"]["accuracy"] > 0.6
    text = digits.summary(quick)
    assert "| MAML (second order) |" in text and "5-way 5-shot" in text


def test_one_shot_nearest_mean_equals_nearest_neighbour(quick: dict) -> None:
    # With one example a class, the class mean is that example: the two rules coincide, up
    # to exact distance ties (pixels take 17 values), which each breaks in its own order.
    table = quick["results"]["1"]
    gap = abs(table["nearest_mean"]["accuracy"] - table["nearest_neighbour"]["accuracy"])
    assert gap < 0.005


def test_training_keeps_the_best_validation_state() -> None:
    x, y = rotated_digits()
    config = {**digits.PROTOCOL, **digits.QUICK, "max_updates": 6, "eval_every": 2}
    sampler = EpisodeSampler(x, y, range(20), n_way=5, k_shot=1, n_query=3, seed=0)
    val = EpisodeSampler(x, y, range(20, 30), n_way=5, k_shot=1, n_query=3, seed=1).sample(8)
    learner, record = digits.train("protonet", sampler, val, config, seed=0)
    assert record["val_accuracy"] == pytest.approx(learner.evaluate(val).accuracy)


def test_unknown_model_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="model"):
        digits.make_learner("svm", 64, digits.PROTOCOL, 0)
