"""Strategy selection: which of a stream's transparent strategies to hold, by regime and
features.

The stream runs a small book of named strategies online (:mod:`adaptd.daemon.core.strategies`:
flat, the volatility-targeted long, trend following at two horizons, short-horizon mean
reversion). The example formed at event t is labelled, H events later, with the strategy
that did best over those events on a risk-adjusted reward net of costs::

    R_k  = p_k * (lp[t+H] - lp[t])                      # strategy k's log return
    DD_k = largest fall of p_k * (lp[s] - lp[t]) from its running peak, t <= s <= t+H
    u_k  = (R_k - c * |p_k - q_k| - lam * DD_k) / (vol_t * sqrt(H))
    y    = argmax_k u_k                                 # ties: the first, so flat wins
                                                        # when nothing earned its costs

with ``p_k`` the positions from event t, ``q_k`` those before it (the turnover the strategy
traded at t), ``c`` the cost per unit of turnover (``cost_bps`` basis points), ``lam`` the
drawdown penalty and ``vol_t`` the stream's slow volatility, so the reward is a return per
unit of risk. The drawdown is along the path of log prices from t to t+H, which the rule
keeps: a strategy that ends ahead after a deep fall earns less than one that got there
smoothly. (With H = 1 the drawdown is the loss itself, which never changes the label: a
strategy that loses loses to ``flat`` anyway. It still weighs in rewards that are summed, as
the benchmark's bandits and Hedge sum them.)

The policy is a classifier with one logit per strategy (cross-entropy, a softmax link): its
probabilities are the weights of the strategies, and the position it recommends is
``sum_k softmax(z)_k * p_k``. Adapted after each shift from a few fresh examples, it weights
the strategies that pay in the new regime. By default (``ensemble="hedge"``) the stream also
runs Hedge over the strategies' one-event rewards (:mod:`adaptd.daemon.core.hedge`); its
log-weights end every example's inputs and the network adds them to its logits (the head's
``skip``), so the weights are ``softmax(log w_hedge + z)``: the policy learns a correction to
Hedge, and Hedge itself (a network that outputs 0) is the baseline, the network a retired
policy is replaced with. With ``ensemble="equal"`` the weights are ``softmax(z)`` and the
baseline is the equal-weight ensemble (all logits 0: the same weight on every strategy).

>>> from types import SimpleNamespace
>>> task = StrategyTask(horizon=1, clip=10.0, trend=(2,), reversal=(1,), cost_bps=0.0)
>>> task.strategies
('flat', 'long', 'trend_2', 'reversal_1')
>>> rule = task.label_rule()
>>> for lp in (0.0, 0.01, 0.03):
...     a = rule.anchor(SimpleNamespace(log_price=lp, vol=0.01, fast_var=0.0001))
>>> a.positions  # trend long, reversal short after two rises
(0.0, 1.0, 1.0, -1.0)
>>> task.strategies[int(rule.label(a, SimpleNamespace(log_price=0.02)))]  # then a fall
'reversal_1'
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from adaptd.adapters.checks import non_negative, positive, positive_int
from adaptd.adapters.types import Loss

from ..hedge import OnlineHedge
from ..strategies import StrategyBook, drawdowns, strategy_names
from .hedge_ensemble import HedgeEnsemble, cross_entropy, hedge_definition, hedge_inputs
from .protocol import Head

__all__ = [
    "ENSEMBLES",
    "EqualWeight",
    "HedgeEnsemble",
    "SelectionAnchor",
    "SelectionRule",
    "StrategyTask",
    "hedge_inputs",
    "rewards",
]

ENSEMBLES = ("equal", "hedge")
"""What the strategy policy's logits are relative to: nothing (the equal-weight ensemble at
zero) or Hedge's log-weights."""


class SelectionAnchor(NamedTuple):
    """What the label needs from event t."""

    log_price: float
    inv_scale: float
    """1 / (vol_t * sqrt(H))."""
    positions: tuple[float, ...]
    previous: tuple[float, ...]


def rewards(
    anchor: SelectionAnchor,
    log_price: float,
    cost: float,
    penalty: float,
    path: Sequence[float] | None = None,
) -> list[float]:
    """Each strategy's risk-adjusted net reward from ``anchor``'s event to ``log_price``,
    with its drawdown along ``path`` (the log prices from the anchor's event to
    ``log_price``; None: the two ends alone).

    >>> a = SelectionAnchor(0.0, 100.0, positions=(0.0, 1.0, -1.0), previous=(0.0, 1.0, 1.0))
    >>> [round(u, 6) for u in rewards(a, 0.01, cost=0.0001, penalty=0.5)]
    [0.0, 1.0, -1.52]
    >>> [round(u, 6) for u in rewards(a, 0.01, 0.0001, 0.5, path=[0.0, -0.02, 0.01])]
    [0.0, 0.0, -2.52]
    """
    move = log_price - anchor.log_price
    ends = (anchor.log_price, log_price)
    down_long, down_short = drawdowns(path if path is not None else ends)
    out = []
    for p, q in zip(anchor.positions, anchor.previous, strict=True):
        dd = p * down_long if p > 0.0 else -p * down_short
        out.append((p * move - cost * abs(p - q) - penalty * dd) * anchor.inv_scale)
    return out


class SelectionRule:
    """The label rule of :class:`StrategyTask`; it runs the stream's strategy book, which
    its ``anchor`` advances one event at a time, and keeps the last H log prices: the path
    of the example that matures next. With a ``hedge``, it runs Hedge over the strategies'
    one-event rewards too, and every example's inputs end with Hedge's log-weights
    (``extra``), which the policy network adds to its logits."""

    __slots__ = ("_path", "book", "cost", "hedge", "horizon", "penalty")

    def __init__(
        self,
        horizon: int,
        book: StrategyBook,
        cost: float,
        penalty: float,
        hedge: OnlineHedge | None = None,
    ) -> None:
        self.horizon = positive_int("horizon", horizon)
        self.book = book
        self.cost = cost
        self.penalty = penalty
        self.hedge = hedge
        self._path: deque[float] = deque(maxlen=self.horizon)

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        self.hedge = None  # rules stored before the Hedge ensemble had none
        for name, value in state[1].items():
            setattr(self, name, value)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the inputs :meth:`extra` appends to an example's features (none without
        a Hedge)."""
        return () if self.hedge is None else hedge_inputs(self.book.names)

    def extra(self) -> tuple[float, ...]:
        """Hedge's log-weights after the latest event, for the example formed at it."""
        return self.hedge.log_weights()  # type: ignore[union-attr]

    @property
    def positions(self) -> tuple[float, ...]:
        """The strategies' positions after the latest event (for reports and clients)."""
        return self.book.positions

    def anchor(self, tick: Any) -> SelectionAnchor:
        vol = tick.vol
        if not vol > 0.0:
            raise ValueError(f"vol must be positive, got {vol!r}")
        book = self.book
        hedge = self.hedge
        if hedge is not None:  # scores the positions held since the event before first
            hedge.observe(tick.log_price, book.positions, book.previous, 1.0 / vol)
        book.update(tick.log_price, vol, tick.fast_var)
        self._path.append(tick.log_price)
        inv = 1.0 / (vol * math.sqrt(self.horizon))
        return SelectionAnchor(tick.log_price, inv, book.positions, book.previous)

    def label(self, anchor: SelectionAnchor, tick: Any) -> float:
        # The labeler labels the example formed H events ago before it anchors this event,
        # so the kept prices start at that example's event (otherwise: the two ends alone).
        path = self._path
        ok = len(path) == self.horizon and path[0] == anchor.log_price
        full = [*path, tick.log_price] if ok else None
        u = rewards(anchor, tick.log_price, self.cost, self.penalty, full)
        return float(u.index(max(u)))


class EqualWeight:
    """The equal-weight ensemble: the same weight on every strategy (all logits 0), whose
    cross-entropy is log K on every example."""

    name = "equal-weight ensemble"
    constant_output = 0.0

    def __init__(self, classes: int) -> None:
        self.classes = classes

    def losses(self, y: np.ndarray) -> np.ndarray:
        return np.full(len(y), math.log(self.classes), dtype=np.float64)


@dataclass(frozen=True)
class StrategyTask:
    """Weight a stream's strategies by how they pay in the current regime.

    Parameters
    ----------
    horizon
        H (``features.label_horizon``).
    clip
        ``features.label_clip`` (unused: the label is a class).
    trend, reversal
        Lookbacks, in events, of the trend-following and mean-reversion strategies.
    leverage_cap
        The volatility target's largest leverage.
    cost_bps
        Transaction cost, in basis points of the position per unit of turnover.
    drawdown_penalty
        Weight of a strategy's loss over the horizon in its reward (0: none).
    ensemble
        "hedge" (the default): the stream runs Hedge over the strategies' one-event rewards
        (:mod:`adaptd.daemon.core.hedge`), its log-weights are the network's last inputs and
        are added to its logits, so the policy learns a correction to Hedge and a network
        that outputs 0 is Hedge, the baseline then. "equal": the weights are
        ``softmax(output)``, and the baseline is the equal-weight ensemble.
    hedge_eta, hedge_discount, hedge_clip
        Hedge's learning rate, per-event discount of past rewards (0.9995: a half-life of
        about 1,400 events) and reward clip; the defaults were chosen on the development
        split (docs/benchmarks.md, "Markets"). At the default rate, 30, Hedge follows the
        leader: nearly all the weight is on the strategy with the best discounted record of
        risk-adjusted rewards (a lead of 0.1, a tenth of one event's volatility-scaled
        return, gives it 20 times the weight of the next), and passes to another once that
        one's record overtakes it (performance-based selection; 0.05, the rate before
        2026-12-08, kept the weights near equal).
    hedge_penalty
        Weight of a strategy's one-event loss in Hedge's rewards (the label's drawdown
        penalty over one event). 0 by default: summed over events, a weight ``lam`` on the
        losses costs a strategy that trades about ``0.4 lam`` of its volatility an event,
        more than a daily Sharpe ratio of 0.03 earns it, so Hedge drifts to ``flat`` and the
        strategies that pay lose their weight. On the development split, 0.5 gave a median
        net Sharpe ratio of 0.00 and 0 gave 0.56.
    """

    horizon: int
    clip: float
    trend: tuple[int, ...] = (20, 100)
    reversal: tuple[int, ...] = (5,)
    leverage_cap: float = 2.0
    cost_bps: float = 2.0
    drawdown_penalty: float = 0.5
    ensemble: str = "hedge"
    hedge_eta: float = 30.0
    hedge_discount: float = 0.9995
    hedge_clip: float = 3.0
    hedge_penalty: float = 0.0

    name: ClassVar[str] = "strategy"
    qualified: ClassVar[bool] = True
    loss: ClassVar[Loss] = "cross_entropy"
    features: ClassVar[tuple[str, ...] | None] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "trend", tuple(int(h) for h in self.trend))
        object.__setattr__(self, "reversal", tuple(int(h) for h in self.reversal))
        non_negative("cost_bps", self.cost_bps)
        non_negative("drawdown_penalty", self.drawdown_penalty)
        non_negative("hedge_penalty", self.hedge_penalty)
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {ENSEMBLES}, got {self.ensemble!r}")
        self.label_rule()  # checks the horizon, the lookbacks, the cap and Hedge's parameters

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategies' names: the classes, in logit order."""
        return strategy_names(self.trend, self.reversal)

    @property
    def head(self) -> Head:  # type: ignore[override]
        k = len(self.strategies)
        skip = k if self.ensemble == "hedge" else 0
        return Head(out_dim=k, output_scale=0.01, link="softmax", skip=skip)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Inputs the rule appends to the features: Hedge's log-weights, or none."""
        return hedge_inputs(self.strategies) if self.ensemble == "hedge" else ()

    def label_rule(self) -> SelectionRule:
        book = StrategyBook(self.trend, self.reversal, positive("leverage_cap", self.leverage_cap))
        cost = self.cost_bps * 1e-4
        hedge = None
        if self.ensemble == "hedge":
            hedge = OnlineHedge(
                len(book.names),
                self.hedge_eta,
                self.hedge_discount,
                self.hedge_clip,
                cost=cost,
                penalty=self.hedge_penalty,
            )
        return SelectionRule(self.horizon, book, cost, self.drawdown_penalty, hedge)

    def losses(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        return cross_entropy(output, y)

    def baseline(self) -> EqualWeight | HedgeEnsemble:
        k = len(self.strategies)
        return HedgeEnsemble(k) if self.ensemble == "hedge" else EqualWeight(k)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": {
                "horizon": self.horizon,
                "classes": list(self.strategies),
                "cost_bps": self.cost_bps,
                "drawdown_penalty": self.drawdown_penalty,
                "definition": (
                    "argmax_k of u_k = (p_k (lp[t+H] - lp[t]) - c |p_k - q_k| "
                    "- drawdown_penalty DD_k) / (vol_t sqrt(H)), c = cost_bps / 10000, DD_k "
                    "the largest fall of p_k (lp[s] - lp[t]) from its running peak over "
                    "t <= s <= t+H; ties: the first"
                ),
            },
            "loss": self.loss,
            "output": (
                "one logit per strategy"
                if self.ensemble == "equal"
                else "one logit per strategy: Hedge's log-weight plus the policy's correction"
            ),
            "link": self.head.link,
            "baseline": self.baseline().name,
            **({} if self.ensemble == "equal" else {"hedge": self._hedge_definition()}),
            "strategies": {
                "names": list(self.strategies),
                "leverage": "L_t = min(leverage_cap, vol_t / sqrt(fast_var_t))",
                "leverage_cap": self.leverage_cap,
                "positions": {
                    "flat": "0",
                    "long": "L_t",
                    "trend_h": "L_t * sign(lp_t - lp_(t-h)); 0 until h earlier prices",
                    "reversal_h": "-L_t * sign(lp_t - lp_(t-h)); 0 until h earlier prices",
                },
                "lp_t": "log price of event t; prices counted from the first feature event",
                "position": "sum_k softmax(output)_k * p_k: the policy's recommended position",
            },
        }

    def _hedge_definition(self) -> dict[str, Any]:
        return hedge_definition(
            self.hedge_eta, self.hedge_discount, self.hedge_clip, self.hedge_penalty, self.inputs
        )
