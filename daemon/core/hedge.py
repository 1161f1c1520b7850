"""Hedge over a stream's strategies, event by event: the strategy task's ensemble reference.

Exponentially weighted averaging (Hedge, Freund and Schapire 1997) with full information: at
every event each strategy's one-event reward is known, and the weights are

    S_k <- discount * S_k + clip(u_k)          (after each event)
    w_k  = exp(eta * S_k) / sum_j exp(eta * S_j)

with ``u_k`` the strategy task's reward over one event (:func:`~.strategies.one_step_rewards`:
the position held from the event before, times the move, net of the cost of the turnover that
position traded and of a penalty on its loss, the task's ``hedge_penalty``, 0 by default; per
unit of that event's volatility), clipped to ``+/- clip`` so that one crash does not decide
the weights for good. It is the same Hedge as
:class:`adaptd.adapters.performance.Hedge` run over those rewards (a test holds the two equal
but for weights below 4e-44: the log-weights it reports are floored at
:data:`LOG_WEIGHT_FLOOR`), kept here as plain floats: it runs on the event path and is stored
in the stream's snapshot.

A subscriber computes it with numpy alone from the prices, the positions the message defines,
these parameters and the floor (the message's ``task.hedge``).

>>> h = OnlineHedge(2, eta=1.0, discount=0.5, clip=3.0)
>>> h.observe(0.0, (0.0, 1.0), (0.0, 0.0), 100.0)      # first event: nothing to score
>>> h.observe(0.01, (0.0, 1.0), (0.0, 1.0), 100.0)     # the long position earned 1.0
>>> h.score, [round(v, 4) for v in h.log_weights()]
([0.0, 1.0], [-1.3133, -0.3133])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from adaptd.adapters.checks import positive

__all__ = ["LOG_WEIGHT_FLOOR", "OnlineHedge"]

LOG_WEIGHT_FLOOR = -100.0
"""The least log-weight reported (a weight of 4e-44). The log-weights are the strategy
network's inputs as well as its skip: at the default rate a strategy that trails by a few
events' rewards would reach -1,000 to -7,000 there (measured on the market series), inputs
no layer is sized for; floored, they stay in [-100, 0], and the weights they serve move by
less than 1e-8. -100 was chosen on the development split of the market benchmark among -10,
-20, -50, -100 and -200 (docs/benchmarks.md, "Markets")."""


class OnlineHedge:
    """Hedge's scores of ``k`` strategies, updated from each event's prices and positions.

    Parameters
    ----------
    k
        Strategies.
    eta
        Learning rate: the weights are ``softmax(eta * S)``.
    discount
        Per-event discount of the summed rewards (1: all history; below 1, the recent past).
    clip
        Rewards are clipped to ``+/- clip``.
    cost, penalty
        The task's cost per unit of turnover and the weight of a one-event loss in the
        rewards (the task's ``hedge_penalty``).
    """

    __slots__ = ("_last", "clip", "cost", "discount", "eta", "penalty", "score")

    def __init__(
        self,
        k: int,
        eta: float,
        discount: float,
        clip: float,
        cost: float = 0.0,
        penalty: float = 0.0,
    ) -> None:
        if k < 1:
            raise ValueError(f"Hedge needs at least one strategy, got {k}")
        self.eta = positive("hedge_eta", eta)
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"hedge_discount must be in (0, 1], got {discount!r}")
        self.discount = float(discount)
        self.clip = positive("hedge_clip", clip)
        self.cost = float(cost)
        self.penalty = float(penalty)
        self.score = [0.0] * k
        self._last: tuple[float, float] | None = None
        """(log price, 1 / vol) of the event before."""

    @property
    def parameters(self) -> tuple[float, ...]:
        """``(eta, discount, clip, cost, penalty)``: what its log-weights are a function of,
        besides the prices and positions."""
        return (self.eta, self.discount, self.clip, self.cost, self.penalty)

    def observe(
        self,
        log_price: float,
        held: Sequence[float],
        traded_from: Sequence[float],
        inv_vol: float,
    ) -> None:
        """Score the positions ``held`` since the event before (bought from ``traded_from``)
        over the move to ``log_price``; ``inv_vol`` is 1 / vol of this event, which scales
        the next event's rewards."""
        last = self._last
        self._last = (log_price, inv_vol)
        if last is None:
            return
        move = log_price - last[0]
        scale, clip, cost, penalty = last[1], self.clip, self.cost, self.penalty
        d = self.discount
        score = self.score
        for i, (p, q) in enumerate(zip(held, traded_from, strict=True)):
            earned = p * move
            u = (earned - cost * abs(p - q) - penalty * max(-earned, 0.0)) * scale
            score[i] = d * score[i] + (clip if u > clip else -clip if u < -clip else u)

    def log_weights(self) -> tuple[float, ...]:
        """``log w_k``: the log of each strategy's weight, floored at
        :data:`LOG_WEIGHT_FLOOR` (0 or less; they sum to 1 in exp, but for the floor's
        4e-44 at most a strategy)."""
        eta = self.eta
        z = [eta * s for s in self.score]
        top = max(z)
        norm = top + math.log(sum(math.exp(v - top) for v in z))
        least = norm + LOG_WEIGHT_FLOOR  # a comparison, not a max() call: once per event
        return tuple(v - norm if v > least else LOG_WEIGHT_FLOOR for v in z)
