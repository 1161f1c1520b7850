"""The strategy task on one series: adaptd's selection against the plain ways to pick or mix
strategies, net of costs, scored on the later half.

Every method holds a position from each event to the next (a label horizon of one event) and
pays ``cost_bps`` per unit of position traded; all see only the past:

- adaptd: the position a subscriber computes from the policy it holds at that event (the
  latest published, or the equal-weight ensemble before any): softmax weights times the
  strategies' positions;
- adaptd, no adaptation: the same with the meta-learned initialisation;
- buy and hold (position 1), the volatility-targeted long, and each strategy alone;
- the best single strategy chosen on the earlier half (by net Sharpe there, never in
  hindsight);
- the equal-weight ensemble;
- Hedge (exponentially weighted averaging, :class:`adaptd.adapters.performance.Hedge`) on
  the strategies' risk-adjusted rewards, its rate, discount and loss penalty (none, or the
  label's) chosen on the earlier half;
- Hedge as the strategy task runs it (its own rewards and parameters): the default
  ensemble's baseline, what adaptd serves before any policy and corrects after;
- river's bandits, used plainly (one strategy pulled per event, only its reward seen): UCB,
  UCB restarted at each detected shift, Exp3, Thompson sampling, and LinUCB (disjoint) with
  the regime id and the volatility ratio as context.

The bandits' reward is the strategy task's label's: the one-event return per unit of slow
volatility, net of the strategy's own turnover cost, with losses penalised
(:func:`adaptd.daemon.core.strategies.one_step_rewards`); Hedge's is the same with the loss
penalty it chose (a penalty of 0.5 on every loss outweighs a daily edge of a few hundredths
of the volatility, and Hedge then drifts to ``flat``: docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from river import bandit, proba

from adaptd.adapters.performance import (
    Hedge,
    max_drawdown,
    net_returns,
    periods_per_year,
    probabilistic_sharpe,
    sharpe,
    sortino,
    turnover,
)
from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.core.strategies import one_step_rewards, selected
from adaptd.daemon.core.tasks.selection import StrategyTask

from .harness import Replay
from .risk import quantiles_ms

__all__ = ["HEDGE_GRID", "TASK_HEDGE", "score_strategy", "task_hedge"]

HEDGE_GRID = tuple((eta, d) for eta in (0.05, 0.1, 0.3, 1.0) for d in (1.0, 0.999, 0.99, 0.95))
"""Hedge's (rate, discount) pairs; one is chosen per series on the earlier half, with the
loss penalty of its rewards (0 or the label's ``drawdown_penalty``)."""
TASK_HEDGE = "Hedge (the task's own)"
"""The column of :func:`task_hedge`."""
REWARD_CLIP = 3.0
"""Bandit rewards are clipped to +/- this (Exp3 gets them mapped to [0, 1])."""


def score_strategy(series: MarketSeries, replay: Replay, task: StrategyTask) -> dict[str, Any]:
    """Net performance of every method on the later half of ``series``."""
    trace = replay.tasks[task.name]
    if trace.positions is None:
        raise ValueError("the replay did not record the strategies' positions")
    lp = np.log(np.asarray(series.price, dtype=np.float64))
    ok = np.flatnonzero(~np.isnan(trace.positions[:, 0]))
    rows = ok[ok < len(lp) - 1]  # a position needs the next price to pay
    p = trace.positions[rows]
    half = int(np.searchsorted(rows, len(series) // 2))
    move = lp[rows + 1] - lp[rows]
    previous = np.vstack([np.zeros((1, p.shape[1])), p[:-1]])
    rewards = one_step_rewards(
        p, previous, move, 1.0 / replay.vol[rows], task.cost_bps * 1e-4, task.drawdown_penalty
    )
    names = task.strategies
    held: dict[str, np.ndarray] = {
        "adaptd": _mix(trace.live[rows], p),
        "adaptd, no adaptation": _mix(trace.init[rows], p),
        "buy and hold": np.ones(len(rows)),
        "equal weight": p.mean(axis=1),
    }
    for k, name in enumerate(names):
        held[f"strategy {name}"] = p[:, k]
    early = {k: _net_sharpe(p[:half, k], lp, rows[:half], task.cost_bps) for k in range(len(names))}
    best = max(early, key=lambda k: early[k])
    held["best single (earlier half)"] = p[:, best]
    unpenalised = one_step_rewards(
        p, previous, move, 1.0 / replay.vol[rows], task.cost_bps * 1e-4, 0.0
    )
    penalties = {task.drawdown_penalty: rewards, 0.0: unpenalised}
    eta, discount, penalty = _choose_hedge(p, penalties, lp, rows, half, task.cost_bps)
    held["Hedge"] = _hedge(p, penalties[penalty], eta, discount)
    held[TASK_HEDGE] = task_hedge(p, previous, move, 1.0 / replay.vol[rows], task)
    context = _contexts(replay, rows)
    shifts = set(replay.shifts)
    for label, make in _bandits().items():
        held[label] = _bandit(make, p, rewards, rows, shifts if "restart" in label else set(), None)
    held["LinUCB (river, context)"] = _bandit(
        lambda: bandit.LinUCBDisjoint(alpha=1.0, seed=0), p, rewards, rows, set(), context
    )
    periods = periods_per_year(series.ts_ms)
    scored = {
        label: _measures(w[half:], lp, rows[half:], task.cost_bps, periods)
        for label, w in held.items()
    }
    return {
        "strategies": list(names),
        "cost_bps": task.cost_bps,
        "periods_per_year": periods,
        "scored_events": len(rows) - half,
        "best_single_earlier": names[best],
        "hedge": {"eta": eta, "discount": discount, "penalty": penalty},
        "methods": scored,
        "adaptd_top_strategy_share": _top_share(trace.live[rows[half:]], names),
        "adaptations": trace.adaptations,
        "published": trace.published,
        "retired": trace.retired,
        "adapt_ms": quantiles_ms([o[3] for o in trace.outcomes]),
    }


def _top_share(logits: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """How often each strategy had the largest weight in what adaptd served (equal weights,
    the baseline, counted apart)."""
    top = selected(logits)
    share = {n: float(np.mean(top == k)) for k, n in enumerate(names)}
    return {**share, "equal weights": float(np.mean(top < 0))}


def _mix(logits: np.ndarray, positions: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(np.asarray(logits, dtype=np.float64), nan=0.0)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True) * positions).sum(axis=1)


def _net(w: np.ndarray, lp: np.ndarray, rows: np.ndarray, cost_bps: float) -> np.ndarray:
    # Each row's own next move, so an event the stream skipped cannot join two moves.
    moves = lp[rows + 1] - lp[rows]
    return net_returns(w, np.concatenate([[0.0], np.cumsum(moves)]), cost_bps)


def _net_sharpe(w: np.ndarray, lp: np.ndarray, rows: np.ndarray, cost_bps: float) -> float:
    return sharpe(_net(w, lp, rows, cost_bps))


def _measures(
    w: np.ndarray, lp: np.ndarray, rows: np.ndarray, cost_bps: float, periods: float
) -> dict[str, float]:
    g = _net(w, lp, rows, cost_bps)
    return {
        "sharpe": sharpe(g, periods),
        "sortino": sortino(g, periods),
        "max_drawdown": max_drawdown(g),
        "turnover": turnover(w),
        "psr": probabilistic_sharpe(g),
        "net_log_return": float(g.sum()),
    }


def task_hedge(
    p: np.ndarray, previous: np.ndarray, move: np.ndarray, inv_vol: np.ndarray, task: StrategyTask
) -> np.ndarray:
    """The position of Hedge as the strategy task runs it (its rewards' own loss penalty,
    ``hedge_penalty``, and its rate, discount and clip): what a subscriber holds on the
    default ensemble before any policy, so what the policies' corrections are measured
    against."""
    own = one_step_rewards(p, previous, move, inv_vol, task.cost_bps * 1e-4, task.hedge_penalty)
    return _hedge(p, own, task.hedge_eta, task.hedge_discount, task.hedge_clip)


def _hedge(
    p: np.ndarray, rewards: np.ndarray, eta: float, discount: float, clip: float = REWARD_CLIP
) -> np.ndarray:
    h = Hedge(p.shape[1], eta, discount)
    out = np.empty(len(p))
    for t in range(len(p)):
        out[t] = float(h.weights() @ p[t])
        h.update(np.clip(rewards[t], -clip, clip))  # known at t + 1
    return out


def _choose_hedge(
    p: np.ndarray,
    rewards: dict[float, np.ndarray],
    lp: np.ndarray,
    rows: np.ndarray,
    half: int,
    cost: float,
) -> tuple[float, float, float]:
    """(rate, discount, loss penalty) with the best net Sharpe on the earlier half."""
    scores = {
        (eta, d, penalty): _net_sharpe(_hedge(p[:half], r[:half], eta, d), lp, rows[:half], cost)
        for penalty, r in sorted(rewards.items())
        for eta, d in HEDGE_GRID
    }
    return max(scores, key=lambda key: scores[key])


def _bandits() -> dict[str, Callable[[], Any]]:
    return {
        "UCB (river)": lambda: bandit.UCB(delta=1.0, seed=0),
        "UCB, restarted at shifts (river)": lambda: bandit.UCB(delta=1.0, seed=0),
        "Exp3 (river)": lambda: _Exp3(gamma=0.1, seed=0),
        "Thompson (river)": lambda: bandit.ThompsonSampling(reward_obj=proba.Gaussian(), seed=0),
    }


class _Exp3(bandit.Exp3):
    """river's Exp3 with rewards mapped to [0, 1] and weights kept finite: it never rescales
    its weights, which overflow after some thousands of pulls; dividing them by their
    largest leaves its probabilities unchanged."""

    def update(self, arm_id: Any, *reward_args: Any, **reward_kwargs: Any) -> None:
        (reward,) = reward_args
        super().update(arm_id, (reward + REWARD_CLIP) / (2 * REWARD_CLIP), **reward_kwargs)
        top = max(self._weights.values())
        if top > 1e100:
            for arm in self._weights:
                self._weights[arm] /= top


def _bandit(
    make: Callable[[], Any],
    p: np.ndarray,
    rewards: np.ndarray,
    rows: np.ndarray,
    restarts: set[int],
    context: list[dict[str, float]] | None,
) -> np.ndarray:
    policy = make()
    arms = list(range(p.shape[1]))
    out = np.empty(len(p))
    for t, row in enumerate(rows):
        if row in restarts:
            policy = make()
        arm = policy.pull(arms) if context is None else policy.pull(arms, context=context[t])
        out[t] = p[t, arm]
        reward = float(np.clip(rewards[t, arm], -REWARD_CLIP, REWARD_CLIP))
        if context is None:
            policy.update(arm, reward)
        else:
            policy.update(arm, context[t], reward)
    return out


def _contexts(replay: Replay, rows: np.ndarray) -> list[dict[str, float]]:
    ratio = 0.5 * np.log(replay.fast_var[rows]) - np.log(replay.vol[rows])
    return [
        {f"regime_{int(r)}": 1.0, "log_vol_ratio": float(v), "bias": 1.0}
        for r, v in zip(replay.regime[rows], ratio, strict=True)
    ]
