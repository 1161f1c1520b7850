from __future__ import annotations

import json
import math

import pytest
import torch

from adaptd.adapters.continual import ContinualTask
from bench.learn.continual import joint as joint_training
from bench.learn.continual import runs


def _tasks(n: int = 3) -> list[ContinualTask]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        x = torch.randn(80, 4, generator=g)
        y = (x[:, i % 4] > 0).long() + 2 * (i % 2)  # tasks 0 and 2 use classes 0-1, 1 uses 2-3
        out.append(ContinualTask(i, x[:60], y[:60], x[60:], y[60:]))
    return out


SETUP = runs.Setup(in_dim=4, out_dim=4, hidden=(16,), epochs=5, lr=0.3)


def test_a_strategy_run_records_the_field_s_metrics_and_its_costs() -> None:
    record = runs.run_strategy("naive", {}, _tasks(), SETUP, keep_matrix=True)
    json.dumps(record)
    assert record["tasks"] == 3 and record["options"] == {}
    metrics = record["metrics"]
    assert {"average_accuracy", "backward_transfer", "forward_transfer", "forgetting"} <= set(
        metrics
    )
    assert metrics["retention"]["earliest"]["tasks"] == 1
    assert record["curve"]["tasks"] == [1, 2, 3]
    matrix = record["matrix"]
    assert len(matrix) == 3 and matrix[0][1] is not None  # eval_every=1: every row is full
    assert math.isclose(record["curve"]["average_accuracy"][-1], metrics["average_accuracy"])
    assert record["diagonal_mean"] > 0.8  # every task is learned
    assert record["memory_bytes"] == {"max": 0, "first_tenth": 0, "final": 0}
    assert record["parameters"]["final"] == SETUP.model().parameter_count()
    assert record["seconds_per_task"]["mean"] > 0
    early = record["earliest"]
    assert early["after"] == record["matrix"][0][0] and early["final"] == record["matrix"][2][0]
    assert record["target_met"] == (metrics["retention"]["earliest"]["mean"] > runs.TARGET)


def test_the_target_needs_the_early_tasks_learned_not_just_kept() -> None:
    # Step size zero: nothing is learned, so nothing is forgotten (retention 1), yet the
    # target is not met.
    frozen = runs.Setup(in_dim=4, out_dim=4, hidden=(16,), epochs=1, lr=1e-12)
    record = runs.run_strategy("naive", {}, _tasks(), frozen)
    assert record["metrics"]["retention"]["earliest"]["mean"] > runs.TARGET
    assert record["target_met"] is False


def test_a_failing_strategy_is_recorded_not_raised() -> None:
    record = runs.run_strategy("naive", {"nonsense": 1}, _tasks(2), SETUP)
    assert record["error"].startswith("TypeError")
    with pytest.raises(ValueError, match="name must be a registered"):
        runs.run_strategy("no-such-strategy", {}, _tasks(2), SETUP)  # a typo is not hidden


def test_joint_training_sees_every_task_and_keeps_task_outputs() -> None:
    tasks = _tasks()
    joint = joint_training.run_joint(joint_training.ConcatenatedTasks(tasks), tasks, SETUP)
    sequential = runs.run_strategy("naive", {}, tasks, SETUP)
    assert len(joint["scores"]) == 3
    assert joint["steps"] == SETUP.epochs * math.ceil(180 / SETUP.batch_size)
    # Tasks 0 and 2 share classes but not the rule: joint training cannot fit both, yet its
    # average beats forgetting everything but the last task.
    assert joint["average_accuracy"] > sequential["metrics"]["average_accuracy"] - 0.1

    restricted = [t._replace(classes=(0, 1) if t.id != 1 else (2, 3)) for t in tasks]
    source = joint_training.ConcatenatedTasks(restricted)
    keep = source.joint_classes(torch.tensor([0, 60, 179]), 4)
    assert keep is not None
    first, second = [True, True, False, False], [False, False, True, True]
    assert keep.tolist() == [first, second, first]
    assert joint_training.ConcatenatedTasks(tasks).joint_classes(torch.tensor([0]), 4) is None


def test_setup_builds_the_same_fresh_model_every_time() -> None:
    a, b = SETUP.model(), SETUP.model()
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert SETUP.train_config().lr == SETUP.lr
    assert SETUP.as_dict()["hidden"] == [16]


def test_a_section_s_setup_table_gives_its_setup() -> None:
    table = {
        "hidden": [32, 32],
        "activation": "tanh",
        "epochs": 5,
        "batch_size": 16,
        "lr": 0.001,
        "optimizer": "adam",
    }
    setup = runs.Setup.from_table(table, in_dim=25, out_dim=1, seed=3, loss="mse")
    assert (setup.hidden, setup.loss, setup.seed, setup.output_scale) == ((32, 32), "mse", 3, 1.0)
    scaled = runs.Setup.from_table({**table, "output_scale": 0.1}, in_dim=25, out_dim=1, seed=3)
    assert scaled.output_scale == 0.1 and scaled.loss == "cross_entropy"
