"""How a trading position paid: net returns, risk-adjusted ratios, drawdown, turnover, the
probabilistic Sharpe ratio, and exponentially weighted averaging of strategies (Hedge).

numpy and scipy only, no torch: the market benchmark, the demo and clients use it.

>>> w = np.array([1.0, 1.0, -1.0, 0.0])
>>> lp = np.log([100.0, 101.0, 102.0, 101.0, 101.0])
>>> g = net_returns(w, lp, cost_bps=10.0)  # 10 bp per unit traded
>>> g.round(5).tolist()
[0.00895, 0.00985, 0.00785, -0.001]
>>> round(max_drawdown(g), 4), turnover(w)
(0.001, 1.0)
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = [
    "Hedge",
    "max_drawdown",
    "net_returns",
    "periods_per_year",
    "probabilistic_sharpe",
    "sharpe",
    "sortino",
    "turnover",
]


def net_returns(positions: np.ndarray, log_prices: np.ndarray, cost_bps: float) -> np.ndarray:
    """Log return of holding ``positions[t]`` from price t to t+1, less ``cost_bps`` basis
    points per unit of position traded at t (from 0 before the first).

    ``log_prices`` has one more entry than ``positions``.
    """
    w = np.asarray(positions, dtype=np.float64)
    lp = np.asarray(log_prices, dtype=np.float64)
    if lp.shape != (len(w) + 1,):
        raise ValueError(f"log_prices needs {len(w) + 1} entries, got {lp.shape}")
    traded = np.abs(np.diff(w, prepend=0.0))
    return w * np.diff(lp) - cost_bps * 1e-4 * traded


YEAR_MS = 365.25 * 24 * 3600 * 1000


def periods_per_year(ts_ms: np.ndarray) -> float:
    """Events a year in a record of event times (epoch milliseconds, in order): what scales a
    per-event Sharpe ratio to a yearly one, whatever the calendar (trading days, hours). NaN
    for fewer than two distinct times.

    >>> round(periods_per_year(np.arange(0, 11) * 3.6525 * 86_400_000), 6)  # 10 in 0.1 year
    100.0
    """
    t = np.asarray(ts_ms, dtype=np.float64)
    span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    return (len(t) - 1) / (span / YEAR_MS) if span > 0 else math.nan


def sharpe(returns: np.ndarray, periods: float = 1.0) -> float:
    """Mean over standard deviation (ddof 1), times ``sqrt(periods)`` (e.g. events a year);
    0 for returns that never vary."""
    g = np.asarray(returns, dtype=np.float64)
    sd = g.std(ddof=1) if len(g) > 1 else 0.0
    return float(g.mean() / sd * math.sqrt(periods)) if sd > 0 else 0.0


def sortino(returns: np.ndarray, periods: float = 1.0) -> float:
    """Mean over the downside deviation ``sqrt(mean(min(g, 0)^2))``, times ``sqrt(periods)``.

    >>> round(sortino(np.array([0.02, -0.01, 0.01, -0.01])), 4)
    0.3536
    """
    g = np.asarray(returns, dtype=np.float64)
    down = math.sqrt(float(np.mean(np.minimum(g, 0.0) ** 2))) if len(g) else 0.0
    return float(g.mean() / down * math.sqrt(periods)) if down > 0 else 0.0


def max_drawdown(returns: np.ndarray) -> float:
    """Largest fall of wealth from a previous peak, as a fraction, for log ``returns``."""
    wealth = np.concatenate([[0.0], np.cumsum(np.asarray(returns, dtype=np.float64))])
    fall = np.max(np.maximum.accumulate(wealth) - wealth)
    return float(1.0 - math.exp(-fall))


def turnover(positions: np.ndarray) -> float:
    """Mean absolute change of the position per event (from 0 before the first)."""
    w = np.asarray(positions, dtype=np.float64)
    return float(np.mean(np.abs(np.diff(w, prepend=0.0)))) if len(w) else 0.0


def probabilistic_sharpe(returns: np.ndarray, benchmark: float = 0.0) -> float:
    """Probability that the true per-event Sharpe ratio exceeds ``benchmark``, given the
    sample's length, skewness and kurtosis (Bailey and López de Prado 2012)::

        PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))

    with SR the per-event Sharpe ratio, g3 the skewness and g4 the (non-excess) kurtosis.

    >>> rng = np.random.default_rng(0)
    >>> round(probabilistic_sharpe(rng.normal(0.0, 1.0, 250)), 2)  # no skill: near a coin
    0.46
    """
    g = np.asarray(returns, dtype=np.float64)
    n = len(g)
    if n < 3:
        raise ValueError(f"the probabilistic Sharpe ratio needs 3 or more returns, got {n}")
    sr = sharpe(g)
    g3 = float(stats.skew(g))
    g4 = float(stats.kurtosis(g, fisher=False))
    spread = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if not spread > 0:
        return float("nan")
    return float(stats.norm.cdf((sr - benchmark) * math.sqrt(n - 1) / math.sqrt(spread)))


class Hedge:
    """Exponentially weighted averaging of K strategies (Hedge, Freund and Schapire 1997),
    with full information: after each event every strategy's reward is seen, and the weights
    are ``softmax(eta * S)`` with ``S`` the rewards summed with ``discount`` per event (1:
    all history; below 1: the recent past, for regimes that change).

    >>> h = Hedge(2, eta=1.0, discount=0.5)
    >>> h.update(np.array([1.0, 0.0])); h.update(np.array([0.0, 1.0]))
    >>> h.weights().round(4).tolist()  # S = (0.5, 1.0)
    [0.3775, 0.6225]
    """

    def __init__(self, k: int, eta: float, discount: float = 1.0) -> None:
        if k < 1 or not eta > 0 or not 0 < discount <= 1:
            raise ValueError(f"need k >= 1, eta > 0, 0 < discount <= 1; got {k}, {eta}, {discount}")
        self.eta = eta
        self.discount = discount
        self.score = np.zeros(k)

    def weights(self) -> np.ndarray:
        z = self.eta * self.score
        e = np.exp(z - z.max())
        return e / e.sum()

    def update(self, rewards: np.ndarray) -> None:
        self.score = self.discount * self.score + np.asarray(rewards, dtype=np.float64)
