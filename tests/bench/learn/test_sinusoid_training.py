from __future__ import annotations

import pytest

from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import SinusoidTasks
from bench.learn.sinusoid import training
from bench.learn.sinusoid.pretrained import JointRegression
from bench.learn.sinusoid.protocol import PROTOCOL
from bench.learn.sinusoid.runs import passes


def test_maml_training_lowers_the_validation_error() -> None:
    job = {
        **PROTOCOL,
        "learner": "maml",
        "shots": 10,
        "seed": 0,
        "iterations": 200,
        "eval_every": 100,
        "val_tasks": 30,
        "test_tasks": 30,
        "eval_steps": [1],
    }
    result = training.train_and_test(job)
    curve = result["val_curve"]["mse"]
    assert curve[-1] < 0.8 * curve[0]
    assert isinstance(result["state"], dict) and result["iterations"] == 200


def test_last_half_gain_compares_the_best_of_each_half() -> None:
    # best of the first half (steps <= 20) is 0.9, best overall 0.5
    gain = training.last_half_gain([0, 10, 20, 30, 40], [4.0, 1.0, 0.9, 0.8, 0.5])
    assert gain == pytest.approx(4 / 9)
    assert training.last_half_gain([0], [1.0]) is None


def test_diverged_adaptations_are_counted_not_averaged_and_fail_the_check() -> None:
    tasks = SinusoidTasks().evaluation_tasks(6, k_support=5, n_query=10, seed=3)
    joint = JointRegression(PolicyNet(1, (8,)), inner_steps=1, inner_lr=1e6, meta_lr=1e-3)
    figures = training.test_mse(joint, tasks, steps=10)
    assert figures["diverged"] >= 1 and figures["n"] + figures["diverged"] == 6
    assert not passes({**figures, "mean": 0.0}, 0.31)
    assert training.test_mse(joint, tasks, steps=0)["diverged"] == 0
