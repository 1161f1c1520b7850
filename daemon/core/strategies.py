"""A small, named set of transparent trading strategies, computed online per stream.

Each strategy holds a position at event t from the stream's prices up to t (log prices
``lp``) and its two volatilities (the features' slow ``vol`` and fast ``fast_var``). Every
position but ``flat`` is sized by the same volatility target, the leverage

    L_t = min(cap, vol_t / sqrt(fast_var_t))

so a strategy runs at about the stream's long-run volatility whatever the current one
(volatility targeting, as managed-futures funds size their positions), and it is a direction
times ``L_t``:

- ``flat``: 0, out of the market;
- ``long``: +1, the volatility-targeted long;
- ``trend_h``: the sign of ``lp_t - lp_(t-h)``, time-series momentum over h events
  (Moskowitz, Ooi and Pedersen 2012);
- ``reversal_h``: minus that sign: short-horizon mean reversion.

A trend or reversal holds 0 until h earlier prices are known. What a position earned over
the next events, net of its turnover cost and with its drawdown penalised, is the strategy
task's reward (:func:`one_step_rewards` for one event at many events at once);
:func:`selected` reads which strategy a set of weights favours. The positions are a pure
function of the prices, so a subscriber recomputes them with numpy from the same events (the
strategy task's message defines them; see :mod:`adaptd.daemon.core.tasks.selection`).

>>> book = StrategyBook(trend=(2,), reversal=(1,), cap=2.0)
>>> book.names
('flat', 'long', 'trend_2', 'reversal_1')
>>> for lp in (0.0, 0.01, 0.03):
...     positions = book.update(lp, vol=0.01, fast_var=0.0004)  # fast vol twice the slow
>>> positions  # risen over 2 events and over the last one: trend long, reversal short
(0.0, 0.5, 0.5, -0.5)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from adaptd.adapters.checks import positive, positive_int

__all__ = ["StrategyBook", "drawdowns", "one_step_rewards", "selected", "strategy_names"]


def strategy_names(trend: Sequence[int], reversal: Sequence[int]) -> tuple[str, ...]:
    """The strategies' names, in the order of their positions.

    >>> strategy_names((20, 100), (5,))
    ('flat', 'long', 'trend_20', 'trend_100', 'reversal_5')
    """
    return (
        "flat",
        "long",
        *(f"trend_{h}" for h in trend),
        *(f"reversal_{h}" for h in reversal),
    )


class StrategyBook:
    """The strategies' positions at each event of one stream, and the positions before.

    Parameters
    ----------
    trend
        Lookbacks (events) of the trend-following strategies.
    reversal
        Lookbacks of the mean-reversion strategies.
    cap
        Largest leverage (the volatility target's cap).
    """

    __slots__ = ("_lags", "_prices", "cap", "names", "positions", "previous", "reversal", "trend")

    def __init__(self, trend: Sequence[int], reversal: Sequence[int], cap: float) -> None:
        self.trend = tuple(positive_int("trend lookback", h) for h in trend)
        self.reversal = tuple(positive_int("reversal lookback", h) for h in reversal)
        self.cap = positive("cap", cap)
        self.names = strategy_names(self.trend, self.reversal)
        self._lags = (*self.trend, *self.reversal)
        self._prices: deque[float] = deque(maxlen=max(self._lags, default=0) + 1)
        self.positions: tuple[float, ...] = (0.0,) * len(self.names)
        """Positions after the latest event."""
        self.previous: tuple[float, ...] = self.positions
        """Positions after the event before it (what a strategy traded from)."""

    def update(self, log_price: float, vol: float, fast_var: float) -> tuple[float, ...]:
        """Take event t and return the positions held from it."""
        prices = self._prices
        prices.append(log_price)
        lev = min(self.cap, vol / math.sqrt(fast_var)) if fast_var > 0.0 else self.cap
        out = [0.0, lev]
        n = len(prices)
        for h in self.trend:
            out.append(lev * _sign(log_price - prices[-1 - h]) if n > h else 0.0)
        for h in self.reversal:
            out.append(-lev * _sign(log_price - prices[-1 - h]) if n > h else 0.0)
        self.previous = self.positions
        self.positions = tuple(out)
        return self.positions


def drawdowns(path: Sequence[float]) -> tuple[float, float]:
    """The largest fall from a running peak of a long position (1) and of a short one (-1)
    held along ``path`` (log prices).

    >>> [round(d, 6) for d in drawdowns([0.0, 0.02, -0.01, 0.03])]
    [0.03, 0.04]
    """
    peak = trough = path[0]
    long = short = 0.0
    for lp in path:
        peak = max(peak, lp)
        trough = min(trough, lp)
        long = max(long, peak - lp)
        short = max(short, lp - trough)
    return long, short


def one_step_rewards(
    positions: np.ndarray,
    previous: np.ndarray,
    moves: np.ndarray,
    inv_scale: np.ndarray,
    cost: float,
    penalty: float,
) -> np.ndarray:
    """The strategy task's rewards (:func:`~.tasks.selection.rewards`) of every strategy at
    many events at once, over one event each (H = 1, where the drawdown is the loss):
    ``positions`` and ``previous`` ``(n, k)``, ``moves`` the next log-price moves and
    ``inv_scale`` ``1 / vol_t``, both ``(n,)``. Returns ``(n, k)``.

    >>> one_step_rewards(np.array([[0.0, 1.0, -1.0]]), np.array([[0.0, 1.0, 1.0]]),
    ...                  np.array([0.01]), np.array([100.0]), cost=0.0001, penalty=0.5)
    array([[ 0.  ,  1.  , -1.52]])
    """
    earned = positions * moves[:, None]
    turnover = np.abs(positions - previous)
    net = earned - cost * turnover - penalty * np.maximum(-earned, 0.0)
    return net * inv_scale[:, None]


def selected(weights: np.ndarray) -> np.ndarray:
    """The strategy with the largest weight (or logit) in each row of ``weights`` ``(n, k)``;
    -1 where all are equal: the equal-weight ensemble (NaN rows count as equal).

    >>> selected(np.array([[0.1, 0.7, 0.2], [0.0, 0.0, 0.0]])).tolist()
    [1, -1]
    """
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64), nan=0.0)
    return np.where(np.ptp(w, axis=1) < 1e-9, -1, np.argmax(w, axis=1))


def _sign(x: float) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)
