from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from adaptd.adapters.meta import MAML
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import SinusoidTasks, evaluate_adaptation, query_loss
from bench.learn import convergence


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Two torch threads on a shared 2-core machine make these runs many times slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TINY = {
    "pools": [3, 10],
    "iterations": 12,
    "eval_every": 4,
    "seeds": 1,
    "test_tasks": 15,
    "val_tasks": 6,
}


@pytest.fixture(scope="module")
def quick() -> dict:
    return convergence.run(quick=True, seed=0)


def test_smallest_within_interpolates_on_log_m() -> None:
    found = convergence.smallest_within([10, 100], [1.3, 1.0], tolerance=0.1)
    # Two thirds of the way from 1.3 down to 1.0: 10 * 10 ** (2/3).
    assert found["interpolated"] and found["between"] == [10, 100]
    assert found["m"] == pytest.approx(10 ** (1 + 2 / 3), abs=0.05)


def test_smallest_within_edge_cases() -> None:
    pools = [10, 30, 100]
    assert convergence.smallest_within(pools, [1.0, 1.0, 1.0])["m"] == 10.0
    assert convergence.smallest_within(pools, [2.0, 1.5, 1.2])["m"] is None
    # A pool inside the tolerance followed by one outside does not count.
    found = convergence.smallest_within(pools, [1.05, 1.3, 1.08])
    assert found["between"] == [30, 100] and 30 < found["m"] < 100
    # Exactly on the limit is inside: the crossing is the pool itself.
    assert convergence.smallest_within(pools, [1.3, 1.1, 1.0])["m"] == pytest.approx(30.0)
    with pytest.raises(ValueError, match="ascending"):
        convergence.smallest_within([30, 10], [1.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        convergence.smallest_within([10], [1.0, 1.0])


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_batched_errors_equal_task_by_task_adaptation(steps: int) -> None:
    net = PolicyNet(1, (16, 16), activation="relu")
    learner = MAML(net, inner_steps=1, inner_lr=0.05, meta_lr=1e-3, seed=1)
    tasks = SinusoidTasks(seed=2).sample(7, k_support=5, k_query=9)
    errors = convergence.adapted_errors(learner, tasks, steps)
    learner.inner_steps = steps if steps > 0 else 1
    one_by_one = [
        query_loss(
            learner,
            learner.params if steps == 0 else learner.adapt(t.support_x, t.support_y).params,
            t.query_x,
            t.query_y,
        )
        for t in tasks
    ]
    np.testing.assert_allclose(errors, one_by_one, rtol=1e-5)
    assert evaluate_adaptation(learner, tasks, steps).mean == pytest.approx(errors.mean(), 1e-5)


def test_quick_run_is_json_and_consistent(quick: dict) -> None:
    json.dumps(quick)
    labels = [row["label"] for row in quick["rows"]]
    assert labels == [*map(str, convergence.QUICK["pools"]), "fresh every task"]
    fresh = quick["rows"][-1]
    for steps in ("1", "10"):
        assert fresh["ratio"][steps]["value"] == pytest.approx(1.0)
        for row in quick["rows"]:
            test, ratio = row["test"][steps], row["ratio"][steps]
            assert math.isfinite(test["mean"]) and test["ci"] > 0
            assert ratio["value"] == pytest.approx(test["mean"] / fresh["test"][steps]["mean"])
            assert ratio["low"] <= ratio["value"] <= ratio["high"]
    # Even 30 meta-iterations improve on the initialisation (validation, every condition).
    assert all(min(c[0][1:]) < c[0][0] for c in quick["curves"].values())
    assert quick["test_tasks"] == convergence.QUICK["test_tasks"]
    assert quick["cpu_ms_per_iteration"] > 0 and quick["ms_per_iteration"] > 0


def test_the_selected_checkpoint_is_the_best_on_validation(quick: dict) -> None:
    steps = quick["fresh_curve"]["steps"]
    assert steps[0] == 0 and steps[-1] == convergence.QUICK["iterations"]
    for row in quick["rows"]:
        key = "fresh" if row["pool"] is None else row["label"]
        for curve, best in zip(quick["curves"][key], row["best_steps"], strict=True):
            assert best == steps[int(np.argmin(curve))]


def test_summary_reports_every_pool_and_the_smallest_m(quick: dict) -> None:
    text = convergence.summary(quick)
    for m in convergence.QUICK["pools"]:
        assert f"| {m} |" in text
    assert "fresh every task" in text and "After 1 step:" in text and "After 10 steps:" in text
    assert "diverged" not in text  # a quick run's errors stay near the initial ones


def test_summary_says_when_diverged_tasks_dominate_a_mean(quick: dict) -> None:
    result = copy.deepcopy(quick)
    result["rows"][0]["test"]["10"].update(mean=3e14, ci=5e14, diverged=2, median=0.25)
    text = convergence.summary(result)
    assert f"2 of {quick['test_tasks']} test tasks diverged" in text and "median 0.250" in text
    assert "3e+14 ± 5e+14" in text


def test_spawned_workers_repeat_the_in_process_run() -> None:
    here = convergence.measure(seed=3, workers=0, **TINY)
    spawned = convergence.measure(seed=3, workers=2, **TINY)
    for a, b in zip(here["rows"], spawned["rows"], strict=True):
        assert a["test"] == b["test"]
        assert a["best_steps"] == b["best_steps"]
    assert spawned["workers"] == 2


def test_pools_of_one_seed_are_nested_and_share_the_start() -> None:
    # Every pool size of a seed starts from the same weights: its first checkpoint is equal.
    result = convergence.measure(seed=0, workers=0, **{**TINY, "iterations": 4})
    first = {key: curves[0][0] for key, curves in result["curves"].items()}
    assert len(set(first.values())) == 1
    small, large = (SinusoidTasks(pool_size=m, seed=0).pool for m in TINY["pools"])
    np.testing.assert_array_equal(large[: len(small)], small)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"workers": -1}, "workers"),
        ({"pools": []}, "pools"),
        ({"pools": [0, 10]}, "pools"),
        ({"iterations": 0}, "iterations"),
        ({"seeds": 0}, "seeds"),
    ],
)
def test_bad_arguments_are_named(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        convergence.measure(seed=0, **{**TINY, "workers": 0, **change})
