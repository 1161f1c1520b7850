from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adaptd.adapters.tasks import SinusoidTasks
from bench.learn.convergence import runs
from bench.learn.convergence.protocol import QUICK

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {
    "pools": [3, 10],
    "iterations": 12,
    "eval_every": 4,
    "seeds": 1,
    "test_tasks": 15,
    "val_tasks": 6,
}


@pytest.fixture(scope="module")
def quick(one_torch_thread: None) -> dict:
    return runs.run(quick=True, seed=0)


def test_smallest_within_interpolates_on_log_m() -> None:
    found = runs.smallest_within([10, 100], [1.3, 1.0], tolerance=0.1)
    # Two thirds of the way from 1.3 down to 1.0: 10 * 10 ** (2/3).
    assert found["interpolated"] and found["between"] == [10, 100]
    assert found["m"] == pytest.approx(10 ** (1 + 2 / 3), abs=0.05)


def test_smallest_within_edge_cases() -> None:
    pools = [10, 30, 100]
    assert runs.smallest_within(pools, [1.0, 1.0, 1.0])["m"] == 10.0
    assert runs.smallest_within(pools, [2.0, 1.5, 1.2])["m"] is None
    # A pool inside the tolerance followed by one outside does not count.
    found = runs.smallest_within(pools, [1.05, 1.3, 1.08])
    assert found["between"] == [30, 100] and 30 < found["m"] < 100
    # Exactly on the limit is inside: the crossing is the pool itself.
    assert runs.smallest_within(pools, [1.3, 1.1, 1.0])["m"] == pytest.approx(30.0)
    with pytest.raises(ValueError, match="ascending"):
        runs.smallest_within([30, 10], [1.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        runs.smallest_within([10], [1.0, 1.0])


def test_quick_run_is_json_and_consistent(quick: dict) -> None:
    json.dumps(quick)
    labels = [row["label"] for row in quick["rows"]]
    assert labels == [*map(str, QUICK["pools"]), "fresh every task"]
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
    assert quick["test_tasks"] == QUICK["test_tasks"]
    assert quick["cpu_ms_per_iteration"] > 0 and quick["ms_per_iteration"] > 0


def test_the_selected_checkpoint_is_the_best_on_validation(quick: dict) -> None:
    steps = quick["fresh_curve"]["steps"]
    assert steps[0] == 0 and steps[-1] == QUICK["iterations"]
    for row in quick["rows"]:
        key = "fresh" if row["pool"] is None else row["label"]
        for curve, best in zip(quick["curves"][key], row["best_steps"], strict=True):
            assert best == steps[int(np.argmin(curve))]


def test_spawned_workers_repeat_the_in_process_run() -> None:
    here = runs.measure(seed=3, workers=0, **TINY)
    spawned = runs.measure(seed=3, workers=2, **TINY)
    for a, b in zip(here["rows"], spawned["rows"], strict=True):
        assert a["test"] == b["test"]
        assert a["best_steps"] == b["best_steps"]
    assert spawned["workers"] == 2


def test_pools_of_one_seed_are_nested_and_share_the_start() -> None:
    # Every pool size of a seed starts from the same weights: its first checkpoint is equal.
    result = runs.measure(seed=0, workers=0, **{**TINY, "iterations": 4})
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
        runs.measure(seed=0, **{**TINY, "workers": 0, **change})
