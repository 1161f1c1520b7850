from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from adaptd.adapters.forecasting import (
    christoffersen,
    diebold_mariano,
    ewma_variance,
    fit_dof,
    kupiec,
    log_mse,
    normal_var_es,
    qlike,
    t_var_es,
)


def test_qlike_is_the_patton_loss_and_zero_only_at_the_truth() -> None:
    r, f = np.array([1.0, 2.0, 0.5]), np.array([2.0, 2.0, 1.0])
    want = [r_ / f_ - math.log(r_ / f_) - 1 for r_, f_ in zip(r, f, strict=True)]
    np.testing.assert_allclose(qlike(r, f), want)
    assert qlike(r, f)[1] == 0.0 and (qlike(r, f)[[0, 2]] > 0).all()


def test_qlike_is_minimised_by_the_mean_variance_and_log_mse_by_a_low_one() -> None:
    # Realised variance = true variance x a noisy chi-squared(1) proxy (a squared return).
    rng = np.random.default_rng(0)
    realised = 2.0 * rng.chisquare(1, 200_000)
    grid = np.linspace(0.2, 4.0, 381)
    best_qlike = grid[np.argmin([qlike(realised, f).mean() for f in grid])]
    best_log = grid[np.argmin([log_mse(realised, f).mean() for f in grid])]
    assert best_qlike == pytest.approx(2.0, abs=0.03)
    # exp(E log chi2_1) = exp(-1.27) = 0.28: log-MSE prefers a forecast biased far low.
    assert best_log == pytest.approx(2.0 * math.exp(-1.2704), abs=0.03)


def test_ewma_variance_is_the_riskmetrics_recursion() -> None:
    r = np.array([0.01, -0.02, 0.005, 0.0])
    out = ewma_variance(r, lam=0.94, init=1e-4)
    s2, want = 1e-4, [1e-4]
    for x in r:
        s2 = 0.94 * s2 + 0.06 * x * x
        want.append(s2)
    np.testing.assert_allclose(out, want, rtol=1e-15)
    # The forecast of r[1] by hand: 0.94 * 1e-4 + 0.06 * 1e-4.
    assert out[1] == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="lam"):
        ewma_variance(r, lam=1.0, init=1e-4)
    with pytest.raises(ValueError, match="init"):
        ewma_variance(r, init=0.0)


@pytest.mark.parametrize("level", [0.01, 0.025, 0.05])
def test_var_and_es_of_a_normal(level: float) -> None:
    variance = 4e-4
    var, es = normal_var_es(variance, level)
    sd = math.sqrt(variance)
    # P(loss > VaR) = level, and ES is the mean loss beyond it (by quadrature).
    assert stats.norm.sf(var / sd) == pytest.approx(level)
    tail, _ = integrate.quad(lambda x: x * stats.norm.pdf(x, scale=sd), float(var), np.inf)
    assert float(es) == pytest.approx(tail / level, rel=1e-7)
    assert es > var > 0
    assert normal_var_es(1e-4, 0.01)[0] == pytest.approx(2.3263479 * 0.01)
    with pytest.raises(ValueError, match="level"):
        normal_var_es(variance, 0.5)


# Kupiec's (1995) 95 % non-rejection regions, as tabulated in Jorion, "Value at Risk", ch. 6:
# (level, days, (highest count rejected below, lowest count rejected above)).
KUPIEC_TABLE = [
    (0.01, 510, (1, 11)),
    (0.01, 1000, (4, 17)),
    (0.05, 255, (6, 21)),
    (0.05, 510, (16, 36)),
    (0.05, 1000, (37, 65)),
]


@pytest.mark.parametrize(("level", "days", "bounds"), KUPIEC_TABLE)
def test_kupiec_reproduces_the_published_non_rejection_regions(
    level: float, days: int, bounds: tuple[int, int]
) -> None:
    low, high = bounds
    assert kupiec(low, days, level).pvalue < 0.05
    assert kupiec(low + 1, days, level).pvalue >= 0.05
    assert kupiec(high - 1, days, level).pvalue >= 0.05
    assert kupiec(high, days, level).pvalue < 0.05


def test_kupiec_at_the_expected_rate_and_at_the_edges() -> None:
    assert kupiec(10, 1000, 0.01) == (0.0, 1.0)
    none = kupiec(0, 255, 0.01)
    assert none.statistic == pytest.approx(-2 * 255 * math.log(0.99))
    assert kupiec(255, 255, 0.01).pvalue < 1e-100
    with pytest.raises(ValueError, match="violations"):
        kupiec(3, 2, 0.01)


def test_diebold_mariano_at_horizon_one_is_the_t_test_of_the_differences() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 1.0, 300), rng.gamma(2.0, 1.05, 300)
    got = diebold_mariano(a, b)
    want = stats.ttest_1samp(a - b, 0.0)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-10)
    assert got.pvalue == pytest.approx(want.pvalue, rel=1e-8)


def test_diebold_mariano_uses_the_autocovariances_up_to_horizon_minus_one() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(size=401)
    d = e[1:] + 0.8 * e[:-1] + 0.1  # MA(1) loss differences, as 2-step forecasts make
    n, h = len(d), 2
    c = d - d.mean()
    gamma0, gamma1 = c @ c / n, c[1:] @ c[:-1] / n
    dm = d.mean() / math.sqrt((gamma0 + 2 * gamma1) / n)
    hln = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    got = diebold_mariano(d, np.zeros(n), horizon=2)
    assert got.statistic == pytest.approx(hln, rel=1e-12)
    assert got.pvalue == pytest.approx(2 * stats.t.sf(abs(hln), n - 1), rel=1e-10)
    assert diebold_mariano(np.zeros(5), np.ones(5)) == (-math.inf, 0.0)
    assert diebold_mariano(np.ones(5), np.ones(5)) == (0.0, 1.0)


@pytest.mark.parametrize(("level", "dof"), [(0.01, 4.0), (0.05, 6.0), (0.025, 30.0)])
def test_var_and_es_of_a_student_t_scaled_to_the_variance(level: float, dof: float) -> None:
    variance = 4e-4
    var, es = t_var_es(variance, level, dof)
    scale = math.sqrt(variance * (dof - 2) / dof)
    dist = stats.t(dof, scale=scale)
    assert dist.var() == pytest.approx(variance)
    assert dist.sf(float(var)) == pytest.approx(level)
    tail, _ = integrate.quad(lambda x: x * dist.pdf(x), float(var), np.inf)
    assert float(es) == pytest.approx(tail / level, rel=1e-6)
    # Fatter tails: the 1 % VaR of a t is beyond the normal's of the same variance.
    if level == 0.01:
        assert var > normal_var_es(variance, level)[0]
    with pytest.raises(ValueError, match="dof"):
        t_var_es(variance, level, 2.0)


def test_fit_dof_recovers_the_degrees_of_freedom() -> None:
    rng = np.random.default_rng(3)
    for dof in (4.0, 8.0):
        z = rng.standard_t(dof, 20_000) * math.sqrt((dof - 2) / dof)  # unit variance
        assert fit_dof(z) == pytest.approx(dof, rel=0.15)
    assert fit_dof(rng.standard_normal(20_000)) > 30  # a normal: as many as allowed, nearly


def test_christoffersen_by_hand_and_on_independent_and_clustered_violations() -> None:
    # Transitions 00: 4, 01: 2, 10: 2, 11: 1: a violation is as likely after one as after
    # none (1/3 both), so nothing to reject.
    assert christoffersen(np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], bool)) == (0.0, 1.0)
    # 50 quiet days, 5 violations in a row, 50 quiet: n00 98, n01 1, n10 1, n11 4.
    v = np.r_[np.zeros(50), np.ones(5), np.zeros(50)].astype(bool)
    p01, p11, p = 1 / 99, 4 / 5, 5 / 104
    alt = 98 * math.log(1 - p01) + math.log(p01) + math.log(1 - p11) + 4 * math.log(p11)
    null = 99 * math.log(1 - p) + 5 * math.log(p)
    got = christoffersen(v)
    assert got.statistic == pytest.approx(2 * (alt - null)) and got.pvalue < 1e-4
    rng = np.random.default_rng(11)
    rejected = [christoffersen(rng.random(1000) < 0.05).pvalue < 0.05 for _ in range(400)]
    assert 0.02 < np.mean(rejected) < 0.09  # about its size on independent violations
    assert christoffersen(np.zeros(0, bool)) == (0.0, 1.0)
