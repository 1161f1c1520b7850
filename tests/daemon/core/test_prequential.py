"""Prequential scores: the live policy, the initialisation and the baseline, test then train."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptd.adapters.serving import NumpyPolicy
from adaptd.daemon.core.prequential import Prequential
from adaptd.daemon.core.tasks.returns import ReturnTask

TASK = ReturnTask(horizon=1, clip=10.0)


def constant(value: float) -> NumpyPolicy:
    return NumpyPolicy([(np.zeros((1, 2)), np.array([value]))])


class Counting:
    """A baseline that records every label it was shown, in order."""

    name = "counting"

    def __init__(self) -> None:
        self.seen: list[float] = []

    def losses(self, y: np.ndarray) -> np.ndarray:
        self.seen += y.tolist()
        return np.ones(len(y))


def test_nothing_is_scored_without_any_policy_but_the_baseline_sees_every_label() -> None:
    baseline = Counting()
    scores = Prequential(baseline)
    x, y = np.zeros((3, 2), np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    assert scores.score(TASK, x, y, live=None, init=None) is None
    assert baseline.seen == [1.0, 2.0, 3.0]
    live, init, base, n = scores.mean()
    assert n == 0 and math.isnan(live) and math.isnan(init) and math.isnan(base)


def test_the_live_policy_the_initialisation_and_the_baseline_are_summed() -> None:
    scores = Prequential(TASK.baseline())
    x, y = np.zeros((2, 2), np.float32), np.array([1.0, -1.0], np.float32)
    losses = scores.score(TASK, x, y, live=constant(0.5), init=constant(0.0))
    assert losses is not None
    np.testing.assert_allclose(losses, [0.25, 2.25])  # the live policy's: the error channel
    assert scores.mean() == pytest.approx((1.25, 1.0, 1.0, 2))


def test_without_a_live_policy_the_initialisation_scores_as_both() -> None:
    scores = Prequential(TASK.baseline())
    x, y = np.zeros((2, 2), np.float32), np.array([1.0, 3.0], np.float32)
    scores.score(TASK, x, y, live=None, init=constant(1.0))
    assert scores.mean() == pytest.approx((2.0, 2.0, 5.0, 2))
