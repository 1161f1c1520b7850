"""What a subscriber of the policy topic got on each demo stream, and what it was worth.

The demo's watcher notes every policy it receives with the stream's event count at that
moment; from then on a subscriber uses it. Replaying the stream's events with the daemon's
own features (:class:`~adaptd.daemon.core.features.FeatureExtractor`) and strategy book
gives, at every event, what that subscriber computed from the policy it held, with numpy
alone, as the message defines it:

- risk: the variance of the next H returns, ``s2_t * H * exp(output)`` (the task's reference,
  ``s2_t * H``, until a policy arrives), scored by QLIKE against the realised variance next to
  the reference and RiskMetrics (lambda 0.94), and the hit rates of the VaR the message
  defines;
- strategy: the weights of the strategies (the task's baseline, Hedge's weights by default
  or equal weights, until a policy arrives) and the
  position they recommend, net of the task's costs, next to the equal-weight ensemble, the
  volatility-targeted long and buy and hold, with Sharpe ratios and the probabilistic Sharpe
  ratio.

This is the whole run, prequential (each forecast made before its outcome), not the
benchmark's split into an earlier part for meta-training and a later one for scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptd.adapters.forecasting import ewma_variance, qlike
from adaptd.adapters.performance import (
    net_returns,
    periods_per_year,
    probabilistic_sharpe,
    sharpe,
)
from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import Settings
from adaptd.daemon.core.features import FeatureExtractor
from adaptd.daemon.core.policy import Policy, PolicyMessage
from adaptd.daemon.core.strategies import selected
from adaptd.daemon.core.tasks.risk import RiskTask
from adaptd.daemon.core.tasks.selection import StrategyTask
from adaptd.daemon.service.configs import tasks_of

__all__ = ["Received", "RiskServed", "Served", "StrategyServed", "serve"]

Received = list[tuple[int, PolicyMessage]]
"""A model's policies in arrival order, each with the stream's event count on arrival."""


@dataclass
class RiskServed:
    """Per event: the forecast and reference variances of the next H returns, and the
    realised one (NaN where unknown)."""

    horizon: int
    forecast: np.ndarray
    reference: np.ndarray
    riskmetrics: np.ndarray
    realised: np.ndarray
    scores: dict[str, Any]


@dataclass
class StrategyServed:
    """Per event: the strategies' positions, the weights held and the position they make."""

    names: tuple[str, ...]
    positions: np.ndarray
    weights: np.ndarray
    position: np.ndarray
    scores: dict[str, Any]

    def selected(self) -> np.ndarray:
        """The strategy with the largest weight at each event; -1 for equal weights."""
        return selected(self.weights)


@dataclass
class Served:
    """What a subscriber got on one stream, with the shifts the daemon reported on it."""

    stream: str
    shifts: list[int] = field(default_factory=list)
    risk: RiskServed | None = None
    strategy: StrategyServed | None = None


def serve(
    series: MarketSeries,
    settings: Settings,
    received: dict[str, Received],
    n: int,
    shifts: list[int],
) -> Served:
    """Replay the first ``n`` events of ``series`` as a subscriber holding, at each event, the
    latest policy of ``received`` (by model id) that had arrived."""
    feats = FeatureExtractor(settings.features)
    tasks = {t.name: t for t in tasks_of(settings)}
    strategy = tasks.get("strategy")
    # The strategy task's own rule runs the book (and Hedge, whose log-weights its policy
    # reads after the features, with `ensemble: hedge`), as the message defines them.
    rule = strategy.label_rule() if isinstance(strategy, StrategyTask) else None
    book = rule.book if rule is not None else None
    extra = len(rule.inputs) if rule is not None else 0
    risk = tasks.get("risk")
    # The risk task's reference variance, as its own label rule computes it from the events.
    reference = risk.label_rule() if isinstance(risk, RiskTask) else None
    d = len(feats.names)
    x = np.full((n, d), np.nan, np.float32)
    lp, s2 = np.empty(n), np.full(n, np.nan)
    held = np.full((n, len(book.names)), np.nan) if book is not None else None
    hedge = np.zeros((n, extra), np.float32)
    # Every field the daemon's features read: a stream with volumes (Apple's) has volume_z.
    bid, ask, volume = (
        None if a is None else a[:n].astype(float).tolist()
        for a in (series.bid, series.ask, series.volume)
    )
    for t in range(n):
        row = feats.update(
            float(series.price[t]),
            None if bid is None else bid[t],
            None if ask is None else ask[t],
            None if volume is None else volume[t],
            int(series.ts_ms[t]),
        )
        lp[t] = feats.log_price
        if row is not None:
            x[t] = row
            if reference is not None:
                reference.anchor(feats)
                s2[t] = reference.reference
            if rule is not None and held is not None:
                rule.anchor(feats)
                held[t] = rule.positions
                if extra:
                    hedge[t] = rule.extra()
    out = Served(series.stream, sorted(shifts))
    ready = ~np.isnan(x[:, 0])
    if isinstance(risk, RiskTask):
        ratio = _outputs(received.get(f"{series.stream}/risk", []), x, ready, 1)[:, 0]
        out.risk = _risk(risk, lp, s2, np.where(ready, ratio, np.nan))
    if isinstance(strategy, StrategyTask) and held is not None:
        k = len(strategy.strategies)
        inputs = np.concatenate([x, hedge], axis=1) if extra else x
        w = _outputs(received.get(f"{series.stream}/strategy", []), inputs, ready, k)
        if extra:  # before the first policy: the baseline, Hedge itself
            first = min(
                (item[0] for item in received.get(f"{series.stream}/strategy", [])), default=n
            )
            w[:first] = np.exp(hedge[:first])
        out.strategy = _strategy(strategy, series, lp, held, w, ready)
    return out


def _outputs(received: Received, x: np.ndarray, ready: np.ndarray, width: int) -> np.ndarray:
    """What the held policy gives at each event (``Policy.predict``, link applied); before the
    first policy, the baseline's: a ratio of 1 or equal weights."""
    n = len(x)
    out = np.full((n, width), 1.0 if width == 1 else 1.0 / width)
    order = sorted(received, key=lambda item: item[0])
    for j, (start, message) in enumerate(order):
        stop = order[j + 1][0] if j + 1 < len(order) else n
        rows = np.flatnonzero(ready[start:stop]) + start
        if len(rows):
            out[rows] = np.asarray(Policy(message).predict(x[rows])).reshape(len(rows), width)
    return out


def _risk(task: RiskTask, lp: np.ndarray, s2: np.ndarray, ratio: np.ndarray) -> RiskServed:
    h = task.horizon
    n = len(lp)
    r = np.diff(lp, prepend=lp[0])
    realised = np.full(n, np.nan)
    csum = np.concatenate([[0.0], np.cumsum(r**2)])
    realised[: n - h] = csum[h + 1 : n + 1] - csum[1 : n - h + 1]
    reference = s2 * h  # NaN in the features' warm-up
    forecast = reference * ratio
    # out[t] forecasts r[t + 1] from the returns up to event t; the initial variance is that
    # of the first returns, which fall in the features' warm-up, never scored.
    riskmetrics = ewma_variance(r[1:], init=float(np.mean(r[1:61] ** 2)) or 1e-8) * h
    moved = np.full(n, np.nan)
    moved[: n - h] = lp[h:] - lp[: n - h]
    ok = ~np.isnan(forecast) & ~np.isnan(realised) & ~np.isnan(riskmetrics)
    y = np.maximum(realised[ok], task.floor * reference[ok])
    scores: dict[str, Any] = {
        "examples": int(ok.sum()),
        "qlike": {
            "adaptd": float(np.mean(qlike(y, forecast[ok]))),
            "reference": float(np.mean(qlike(y, reference[ok]))),
            "RiskMetrics": float(np.mean(qlike(y, riskmetrics[ok]))),
        },
        "var_hits": {},
    }
    var, _ = task.tail(moved, forecast)  # as the message defines it, calibration included
    for k, level in enumerate(task.levels):
        scores["var_hits"][f"{level:g}"] = float(np.mean(moved[ok] < -var[ok, k]))
    return RiskServed(h, forecast, reference, riskmetrics, realised, scores)


def _strategy(
    task: StrategyTask,
    series: MarketSeries,
    lp: np.ndarray,
    held: np.ndarray,
    weights: np.ndarray,
    ready: np.ndarray,
) -> StrategyServed:
    rows = np.flatnonzero(ready[:-1])  # a position needs the next price to pay
    position = np.full(len(lp), np.nan)
    position[rows] = (weights[rows] * held[rows]).sum(axis=1)
    periods = periods_per_year(series.ts_ms[rows])
    periods = periods if periods == periods else 1.0  # one event: no year to scale to
    path = np.concatenate([lp[rows], lp[rows[-1:] + 1]])
    methods = {
        "adaptd": position[rows],
        "equal weight": held[rows].mean(axis=1),
        "vol-targeted long": held[rows, task.strategies.index("long")],
        "buy and hold": np.ones(len(rows)),
    }
    scores: dict[str, Any] = {}
    for name, w in methods.items():
        g = net_returns(w, path, task.cost_bps)
        scores[name] = {
            "sharpe": sharpe(g, periods),
            "psr": probabilistic_sharpe(g) if len(g) > 2 else float("nan"),
            "net_log_return": float(g.sum()),
        }
    return StrategyServed(task.strategies, held, weights, position, scores)
