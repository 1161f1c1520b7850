"""Adaptive conformal inference for VaR: the recursion of Gibbs and Candès, its coverage on
misspecified forecasts, and no look-ahead when outcomes arrive late."""

from __future__ import annotations

import numpy as np
import pytest

from adaptd.adapters.conformal import HIGH, LOW, AdaptiveLevels, var_path
from adaptd.adapters.forecasting import normal_var_es, t_var_es


def test_the_probability_is_the_closed_form_of_the_recursion() -> None:
    rng = np.random.default_rng(1)
    hits = rng.random((500, 2)) < (0.02, 0.08)
    levels = AdaptiveLevels((0.01, 0.05), gamma=0.005)
    for t, row in enumerate(hits, 1):
        levels.update(tuple(row))
        # a_t = a + gamma * (a * m_t - v_t): m_t outcomes, v_t violations among them
        v = hits[:t].sum(axis=0)
        want = [a + 0.005 * (a * t - vi) for a, vi in zip((0.01, 0.05), v, strict=True)]
        assert levels.raw == pytest.approx(want, abs=1e-12)
        assert levels.current() == pytest.approx([min(max(w, LOW), HIGH) for w in want])


@pytest.mark.parametrize(
    ("levels", "gamma", "match"),
    [
        ((0.01,), 0.0, "gamma"),
        ((0.01,), 1.0, "gamma"),
        ((0.5,), 0.01, "levels"),
        ((), 0.01, "levels"),
    ],
)
def test_bad_arguments_are_named(levels: tuple[float, ...], gamma: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaptiveLevels(levels, gamma)


@pytest.mark.parametrize("dof", [None, 5.0])
def test_without_gamma_the_var_is_the_fixed_levels(dof: float | None) -> None:
    variance = np.array([1e-4, np.nan, 4e-4])
    var, es = var_path(np.zeros(3), variance, (0.01, 0.05), dof=dof)
    for k, level in enumerate((0.01, 0.05)):
        want = normal_var_es(variance, level) if dof is None else t_var_es(variance, level, dof)
        np.testing.assert_allclose(var[:, k], want[0])
        np.testing.assert_allclose(es[:, k], want[1])


@pytest.mark.parametrize("dof", [None, 5.0])
def test_violations_keep_to_the_level_whatever_the_misspecification(dof: float | None) -> None:
    # Student t(3) returns whose variance drifts, forecast 60 % too low by a normal or t(5):
    # the fixed level is broken far too often, the adaptive one keeps to it.
    rng = np.random.default_rng(7)
    n = 30_000
    true_var = 1e-4 * np.exp(np.sin(np.arange(n) / 2000.0))
    r = rng.standard_t(3, n) / np.sqrt(3.0) * np.sqrt(true_var)
    forecast = 0.4 * true_var
    fixed, _ = var_path(r, forecast, (0.01, 0.05), dof=dof)
    adaptive, es = var_path(r, forecast, (0.01, 0.05), dof=dof, gamma=0.005)
    for k, level in enumerate((0.01, 0.05)):
        assert np.mean(r < -fixed[:, k]) > 1.3 * level
        assert np.mean(r < -adaptive[:, k]) == pytest.approx(level, rel=0.1)
        assert (es[:, k] > adaptive[:, k]).all()  # the shortfall lies beyond the VaR


def test_a_late_outcome_counts_when_it_arrives_and_not_before() -> None:
    rng = np.random.default_rng(3)
    n, h = 200, 3
    outcome = rng.normal(0.0, 0.012, n)  # a little more than the forecast's sd
    variance = np.full(n, 1e-4)
    variance[10] = np.nan  # no VaR there: its outcome counts for nothing
    var, _ = var_path(outcome, variance, (0.05,), gamma=0.01, horizon=h)
    assert np.isnan(var[10, 0])
    t = 120
    later = outcome.copy()
    later[t - h + 1 :] = -1.0  # outcomes not yet known at t: no effect on its VaR
    np.testing.assert_array_equal(
        var_path(later, variance, (0.05,), gamma=0.01, horizon=h)[0][: t + 1], var[: t + 1]
    )
    earlier = outcome.copy()
    earlier[t - h] = -1.0 if outcome[t - h] > -var[t - h, 0] else 0.0  # known at t: flips a_t
    moved = var_path(earlier, variance, (0.05,), gamma=0.01, horizon=h)[0]
    np.testing.assert_array_equal(moved[:t], var[:t])
    assert moved[t, 0] != var[t, 0]
    unchanged = outcome.copy()
    unchanged[10] = -1.0
    np.testing.assert_array_equal(
        var_path(unchanged, variance, (0.05,), gamma=0.01, horizon=h)[0], var
    )
