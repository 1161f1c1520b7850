"""mean_ci95 is the normal-approximation 95 % interval of the mean."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptd.adapters.tasks.stats import Z95, Estimate, mean_ci95


def test_matches_the_formula() -> None:
    values = np.random.default_rng(0).normal(2.0, 3.0, size=600)
    mean, half = mean_ci95(values)
    assert mean == pytest.approx(values.mean())
    assert half == pytest.approx(1.96 * values.std(ddof=1) / math.sqrt(600), rel=1e-3)
    assert abs(Z95 - 1.959964) < 1e-6


def test_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        mean, half = mean_ci95(rng.exponential(1.0, size=200))
        hits += abs(mean - 1.0) <= half
    assert 0.93 < hits / 2000 < 0.97


def test_one_value_has_no_spread_and_bad_input_is_refused() -> None:
    assert mean_ci95([3.0]) == (3.0, 0.0)
    assert Estimate.of([1.0, 3.0]).n == 2
    with pytest.raises(ValueError, match="empty"):
        mean_ci95([])
    with pytest.raises(ValueError, match="finite"):
        mean_ci95([1.0, math.nan])
