"""The strategy benchmark: positions as the stream computed them, every method scored on the
later half only, and nothing chosen with the later half."""

from __future__ import annotations

import math

import numpy as np
import pytest
from series_support import daily_series

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
    return daily_series("trends", "T", rng.normal(drift, 0.01), "trends that reverse")


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
                "forecasters": {
                    name: {"var": var, "var_calibrated": var, "var_t": {**var, "dof": 5.0}}
                    for name in ("adaptd", "RiskMetrics", "GARCH(1,1)")
                },
                "adapt_ms": {},
            },
            "return": {"live_over_zero": 1.0, "adapt_ms": {}},
            "strategy": {"methods": methods, "adapt_ms": {"p99": 2.0}},
        }

    g = goals({"a": result(1.0 + 1e-12, 1.0, 0.5), "b": result(1.2, 1.0, 1.2)})
    assert g["strategy_sharpe_above_equal_weight_on"] == 1  # only b
    assert g["strategy_sharpe_at_or_above_best_single_on"] == 2
    assert g["strategy_sharpe_both_on"] == 1
    assert g["var_calibrated_kupiec_not_rejected_on"] == 2


def test_exp3_rescaled_keeps_rivers_probabilities_and_stays_finite() -> None:
    from river import bandit

    from bench.markets.strategy import REWARD_CLIP, _Exp3

    ours, theirs = _Exp3(gamma=0.1, seed=0), bandit.Exp3(gamma=0.1, seed=0)
    arms = [0, 1, 2]
    rng = np.random.default_rng(0)
    for _ in range(300):  # few enough that river's own weights stay finite
        arm = ours.pull(arms)
        assert theirs.pull(arms) == arm  # same seed, same probabilities
        reward = float(rng.uniform(-REWARD_CLIP, REWARD_CLIP))
        ours.update(arm, reward)
        theirs.update(arm, (reward + REWARD_CLIP) / (2 * REWARD_CLIP))  # rewards in [0, 1]
        np.testing.assert_allclose(
            list(ours._probabilities.values()), list(theirs._probabilities.values())
        )
    for _ in range(20_000):  # where river's weights would overflow
        ours.update(ours.pull(arms), REWARD_CLIP)
    assert all(np.isfinite(w) for w in ours._weights.values())


def test_a_bandit_restarted_at_shifts_forgets_what_it_learnt() -> None:
    from bench.markets.strategy import _bandit

    made: list[object] = []

    class Always:
        """Pulls arm 0 until it has seen a reward, then arm 1."""

        def __init__(self) -> None:
            self.seen = 0
            made.append(self)

        def pull(self, arms: list[int]) -> int:
            return 1 if self.seen else 0

        def update(self, arm: int, reward: float) -> None:
            self.seen += 1

    p = np.tile([[1.0, -1.0]], (6, 1))
    rewards = np.array([[0.0, 1.0]] * 6)  # arm 1 pays
    rows = np.arange(100, 106)
    plain = _bandit(Always, p, rewards, rows, set(), None)
    assert plain.tolist() == [1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
    restarted = _bandit(Always, p, rewards, rows, {103}, None)
    assert restarted.tolist() == [1.0, -1.0, -1.0, 1.0, -1.0, -1.0]
    assert len(made) == 3


def test_the_tasks_own_hedge_is_what_a_subscriber_holds_before_any_policy() -> None:
    from bench.markets.strategy import _mix, task_hedge

    series = _trends()
    replay = replay_series(series, SETTINGS, meta_every=100, meta_until=len(series) // 2)
    trace = replay.tasks["strategy"]
    lp = np.log(series.price)
    ok = np.flatnonzero(~np.isnan(trace.positions[:, 0]))
    rows = ok[ok < len(lp) - 1]
    p = trace.positions[rows]
    previous = np.vstack([np.zeros((1, p.shape[1])), p[:-1]])
    own = task_hedge(p, previous, lp[rows + 1] - lp[rows], 1.0 / replay.vol[rows], TASK)
    first_live = trace.publish_rows[0] + 1 if trace.publish_rows else len(series)
    before = rows < first_live
    assert before.sum() > 100
    np.testing.assert_allclose(own[before], _mix(trace.live[rows[before]], p[before]), atol=1e-6)
    assert np.ptp(own[before][-50:]) > 0.0


def test_the_field_hedge_chooses_unpenalised_rewards_where_the_penalty_sends_it_flat() -> None:
    """A drift of a tenth of the volatility an event: with every loss penalised by half, going
    long earns less than nothing, Hedge drifts to flat and earns nothing; without the penalty
    it goes long. The choice is made on the earlier half by net Sharpe, and takes the latter."""
    from adaptd.daemon.core.strategies import one_step_rewards
    from bench.markets.strategy import _choose_hedge

    rng = np.random.default_rng(0)
    n = 4000
    move = rng.normal(0.001, 0.01, n)
    lp = np.concatenate([[0.0], np.cumsum(move)])
    rows = np.arange(n)
    p = np.column_stack([np.ones(n), np.zeros(n)])  # long, flat
    previous = np.vstack([np.zeros((1, 2)), p[:-1]])
    inv_vol = np.full(n, 100.0)
    rewards = {
        penalty: one_step_rewards(p, previous, move, inv_vol, 0.0, penalty)
        for penalty in (0.0, 0.5)
    }
    assert rewards[0.5][:, 0].mean() < 0 < rewards[0.0][:, 0].mean()
    *_, penalty = _choose_hedge(p, rewards, lp, rows, n // 2, 0.0)
    assert penalty == 0.0
