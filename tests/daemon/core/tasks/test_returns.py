"""The return task: the volatility-scaled forward return, its loss and its baseline."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from adaptd.daemon.core.tasks.returns import ReturnTask


def tick(price: float, vol: float) -> SimpleNamespace:
    return SimpleNamespace(log_price=math.log(price), ret=0.0, vol=vol)


def test_the_label_is_the_forward_return_in_units_of_the_volatility_at_t() -> None:
    rule = ReturnTask(horizon=4, clip=10.0).label_rule()
    anchor = rule.anchor(tick(100.0, 0.01))
    y = rule.label(anchor, tick(102.0, 0.5))  # later volatility does not matter
    assert y == pytest.approx(math.log(1.02) / (0.01 * 2.0))


def test_labels_are_clipped_and_a_zero_volatility_is_refused() -> None:
    rule = ReturnTask(horizon=1, clip=3.0).label_rule()
    assert rule.label(rule.anchor(tick(100.0, 0.001)), tick(150.0, 0.001)) == 3.0
    assert rule.label(rule.anchor(tick(100.0, 0.001)), tick(50.0, 0.001)) == -3.0
    with pytest.raises(ValueError, match="vol must be positive"):
        rule.anchor(tick(100.0, 0.0))


def test_it_keeps_the_names_and_the_message_of_before_tasks() -> None:
    task = ReturnTask(horizon=5, clip=10.0)
    assert (task.name, task.qualified, task.loss, task.features) == ("return", False, "mse", None)
    assert task.describe()["label"] == {
        "horizon": 5,
        "clip": 10.0,
        "definition": "forward log return over H events / (vol_t * sqrt(H)), clipped",
    }
    assert task.describe()["output"] == "scaled forward return"


def test_the_zero_forecast_costs_the_square_of_each_label() -> None:
    y = np.array([0.5, -2.0, 0.0])
    np.testing.assert_allclose(ReturnTask(horizon=1, clip=1.0).baseline().losses(y), y**2)
