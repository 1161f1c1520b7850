"""Performance measures against sums written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from adaptd.adapters.performance import (
    Hedge,
    max_drawdown,
    net_returns,
    probabilistic_sharpe,
    sharpe,
    sortino,
    turnover,
)

G = np.array([0.01, -0.02, 0.03, 0.005, -0.01, 0.02])


def test_net_returns_charge_the_turnover_at_each_trade() -> None:
    lp = np.array([0.0, 0.01, 0.0, 0.02])
    got = net_returns(np.array([2.0, -1.0, 0.0]), lp, cost_bps=5.0)
    assert got.tolist() == pytest.approx([0.02 - 0.001, 0.01 - 0.0015, 0.0 - 0.0005])
    with pytest.raises(ValueError, match="4 entries"):
        net_returns(np.zeros(3), np.zeros(3), 1.0)


def test_sharpe_and_sortino_by_hand() -> None:
    mean = sum(G) / 6
    sd = math.sqrt(sum((g - mean) ** 2 for g in G) / 5)
    down = math.sqrt((0.02**2 + 0.01**2) / 6)
    assert sharpe(G) == pytest.approx(mean / sd)
    assert sharpe(G, periods=252) == pytest.approx(mean / sd * math.sqrt(252))
    assert sortino(G) == pytest.approx(mean / down)
    assert sharpe(np.full(5, 0.01)) == 0.0 and sortino(np.full(5, 0.01)) == 0.0


def test_drawdown_is_the_largest_fall_from_a_peak() -> None:
    # wealth 0, .01, -.01, .02, .025, .015, .035: worst fall .01 -> -.01
    assert max_drawdown(G) == pytest.approx(1 - math.exp(-0.02))
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0
    assert turnover(np.array([1.0, -1.0, -1.0, 0.0])) == pytest.approx((1 + 2 + 0 + 1) / 4)


def test_probabilistic_sharpe_follows_bailey_and_lopez_de_prado() -> None:
    n = len(G)
    mean = G.mean()
    sr = mean / G.std(ddof=1)
    m2 = np.mean((G - mean) ** 2)
    g3 = np.mean((G - mean) ** 3) / m2**1.5
    g4 = np.mean((G - mean) ** 4) / m2**2
    z = sr * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert probabilistic_sharpe(G) == pytest.approx(norm.cdf(z))
    assert probabilistic_sharpe(G, benchmark=sr) == pytest.approx(0.5)
    rng = np.random.default_rng(3)
    assert probabilistic_sharpe(rng.normal(0.1, 1.0, 2000)) > 0.99  # skill, long record
    with pytest.raises(ValueError, match="3 or more"):
        probabilistic_sharpe(G[:2])


def test_hedge_weights_are_the_softmax_of_discounted_rewards() -> None:
    h = Hedge(3, eta=2.0, discount=0.9)
    r1, r2 = np.array([1.0, 0.0, -1.0]), np.array([0.0, 0.5, 0.0])
    h.update(r1)
    h.update(r2)
    s = 0.9 * r1 + r2
    assert h.weights() == pytest.approx(np.exp(2 * s) / np.exp(2 * s).sum())
    assert Hedge(4, eta=1.0).weights() == pytest.approx([0.25] * 4)
    big = Hedge(2, eta=1.0)
    big.update(np.array([1e4, 0.0]))  # no overflow
    assert big.weights().tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="eta > 0"):
        Hedge(2, eta=0.0)


def test_periods_per_year_counts_events_over_the_span() -> None:
    from adaptd.adapters.performance import YEAR_MS, periods_per_year

    daily = np.arange(253) * YEAR_MS / 252  # 252 intervals in a year
    assert periods_per_year(daily) == pytest.approx(252.0)
    assert math.isnan(periods_per_year(np.array([5.0])))
