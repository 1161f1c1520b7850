"""The strategy benchmark: positions as the stream computed them, every method scored on the
later half only, and nothing chosen with the later half."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.strategies import StrategyBook
from adaptd.daemon.service.configs import tasks_of
from bench.markets.harness import replay_series
from bench.markets.strategy import score_strategy


def _trends(n: int = 1200, seed: int = 4, late_drift: float = -0.002) -> MarketSeries:
    rng = np.random.default_rng(seed)
    drift = np.where(np.arange(n) < n // 2, 0.002, late_drift)
    drift[(np.arange(n) // 150) % 2 == 1] *= -1  # trends that reverse every 150 events
    price = 100 * np.exp(np.cumsum(rng.normal(drift, 0.01)))
    return MarketSeries(
        name="trends",
        stream="T",
        ts_ms=1_700_000_000_000 + 86_400_000 * np.arange(n, dtype=np.int64),
        price=price,
        volume=None,
        annotations={},
        description="trends that reverse",
    )


SETTINGS = load_settings(
    environ={},
    features={"label_horizon": 1},
    adaptation={"tasks": ["strategy"], "isolation": "thread"},
)
(TASK,) = tasks_of(SETTINGS)


def test_every_method_is_scored_and_the_positions_are_the_streams() -> None:
    series = _trends()
    replay = replay_series(series, SETTINGS, meta_every=100, meta_until=len(series) // 2)
    trace = replay.tasks["strategy"]
    assert trace.positions is not None and trace.live.shape == (len(series), 5)
    # The positions are the strategy book's, run from the first event with features.
    first = int(np.flatnonzero(~np.isnan(trace.positions[:, 0]))[0])
    book = StrategyBook(TASK.trend, TASK.reversal, TASK.leverage_cap)
    lp = np.log(series.price)
    for t in range(first, first + 300):
        want = book.update(float(lp[t]), float(replay.vol[t]), float(replay.fast_var[t]))
        np.testing.assert_allclose(trace.positions[t], want, rtol=1e-12)
    out = score_strategy(series, replay, TASK)
    m = out["methods"]
    assert {"adaptd", "equal weight", "Hedge", "UCB (river)", "LinUCB (river, context)"} <= set(m)
    for figures in m.values():
        assert math.isfinite(figures["sharpe"]) and 0 <= figures["max_drawdown"] <= 1
    # Buy and hold pays the later half's move, less one entry cost.
    half = len(series) // 2
    move = lp[-1] - lp[half]
    assert m["buy and hold"]["net_log_return"] == pytest.approx(move - TASK.cost_bps * 1e-4)
    assert out["scored_events"] == len(series) - 1 - half
    assert sum(out["adaptd_top_strategy_share"].values()) == pytest.approx(1.0)


def test_choices_made_on_the_earlier_half_ignore_the_later_half() -> None:
    a, b = _trends(late_drift=-0.002), _trends(late_drift=0.004)
    np.testing.assert_array_equal(a.price[:600], b.price[:600])
    picks = []
    for series in (a, b):
        replay = replay_series(series, SETTINGS, meta_every=100, meta_until=len(series) // 2)
        out = score_strategy(series, replay, TASK)
        picks.append((out["best_single_earlier"], out["hedge"]))
    assert picks[0] == picks[1]


def test_equal_weights_computed_two_ways_are_not_above_the_equal_weight_ensemble() -> None:
    from bench.markets.__main__ import goals

    def result(adaptd: float, equal: float, best: float) -> dict:
        methods = {
            "adaptd": {"sharpe": adaptd},
            "equal weight": {"sharpe": equal},
            "best single (earlier half)": {"sharpe": best},
        }
        var = {"0.01": {"rejected_at_5pct": False}, "0.05": {"rejected_at_5pct": False}}
        return {
            "risk": {
                "qlike_ratio_to_best": 1.0,
                "forecasters": {"adaptd": {"var": var, "var_t": {**var, "dof": 5.0}}},
                "adapt_ms": {},
            },
            "return": {"live_over_zero": 1.0, "adapt_ms": {}},
            "strategy": {"methods": methods, "adapt_ms": {"p99": 2.0}},
        }

    g = goals({"a": result(1.0 + 1e-12, 1.0, 0.5), "b": result(1.2, 1.0, 1.2)})
    assert g["strategy_sharpe_above_equal_weight_on"] == 1  # only b
    assert g["strategy_sharpe_at_or_above_best_single_on"] == 2
    assert g["strategy_sharpe_both_on"] == 1
