"""The risk task's fitted reference: the grid's online QLIKE fit, the hour-of-day periodicity,
and the message's definition, written out here from the message alone, reproducing it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from state_support import stored

from adaptd.adapters.forecasting import qlike
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.features import FeatureExtractor
from adaptd.daemon.core.tasks.risk import RiskTask
from adaptd.daemon.core.tasks.variance import GRID, Periodicity

HOUR = 3_600_000


def _garch_prices(n: int, a: float, b: float, seasonal: np.ndarray | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    omega, s2, r = 1e-4 * (1 - a - b), 1e-4, np.zeros(n)
    for t in range(1, n):
        s2 = omega + a * r[t - 1] ** 2 + b * s2
        f = 1.0 if seasonal is None else seasonal[t % 24]
        r[t] = math.sqrt(s2 * f) * rng.standard_normal()
    return 100 * np.exp(np.cumsum(r))


def _references(task: RiskTask, prices: np.ndarray, ts: np.ndarray | None) -> np.ndarray:
    settings = load_settings(environ={}, features={"warmup_events": 60})
    fx, rule = FeatureExtractor(settings.features), task.label_rule()
    out = np.full(len(prices), np.nan)
    for i, p in enumerate(prices):
        if fx.update(float(p), ts_ms=None if ts is None else int(ts[i])) is not None:
            rule.anchor(fx)
            out[i] = rule.reference
    return out


def _score(prices: np.ndarray, ref: np.ndarray, start: int) -> float:
    r = np.diff(np.log(prices))
    t = np.arange(start, len(prices) - 1)
    return float(qlike(np.maximum(r[t] ** 2, 1e-12), ref[t]).mean())


def test_the_grid_fits_a_reactive_market_better_than_the_default_recursion() -> None:
    prices = _garch_prices(6000, a=0.2, b=0.7, seasonal=None, seed=1)
    fitted = RiskTask(horizon=1, clip=10.0, periodicity=None)
    fixed = RiskTask(horizon=1, clip=10.0, reference="garch", periodicity=None)
    rule = fitted.label_rule()
    ref_fit, ref_fixed = _references(fitted, prices, None), _references(fixed, prices, None)
    assert _score(prices, ref_fit, 3000) < _score(prices, ref_fixed, 3000) - 0.01
    settings = load_settings(environ={}, features={"warmup_events": 60})
    fx = FeatureExtractor(settings.features)
    for p in prices:
        if fx.update(float(p)) is not None:
            rule.anchor(fx)
    assert rule.fit.grid[rule.fit.best][0] >= 0.1  # a reactive candidate fits best
    assert rule.fit.grid[0] == GRID[0] == (fitted.garch_a, fitted.garch_b, 0.0)


def test_on_a_calm_persistent_market_the_default_keeps_its_place() -> None:
    prices = _garch_prices(3000, a=0.05, b=0.93, seasonal=None, seed=2)
    fitted = _references(RiskTask(horizon=1, clip=10.0, periodicity=None), prices, None)
    fixed = _references(
        RiskTask(horizon=1, clip=10.0, reference="garch", periodicity=None), prices, None
    )
    assert _score(prices, fitted, 1000) == pytest.approx(_score(prices, fixed, 1000), abs=0.01)


def test_the_periodicity_learns_the_hours_and_is_a_no_op_on_daily_closes() -> None:
    seasonal = np.where(np.arange(24) < 8, 0.2, 1.4)  # quiet nights, busy days: mean 1
    prices = _garch_prices(6000, a=0.05, b=0.9, seasonal=seasonal, seed=3)
    hourly = np.arange(6000) * HOUR
    with_p = _references(RiskTask(horizon=1, clip=10.0), prices, hourly)
    without = _references(RiskTask(horizon=1, clip=10.0, periodicity=None), prices, hourly)
    assert _score(prices, with_p, 3000) < _score(prices, without, 3000) - 0.1
    daily = np.arange(6000) * 24 * HOUR + 21 * HOUR  # every close at 21:00 UTC
    on_daily = _references(RiskTask(horizon=1, clip=10.0), prices, daily)
    np.testing.assert_array_equal(on_daily, without)  # exactly: one hour, factor 1


def test_the_periodicity_follows_the_hours_a_market_keeps() -> None:
    season = Periodicity(halflife=5.0)
    for day in range(20):  # a market open 14:00-20:00 UTC only, busier at the open
        for hour in range(14, 21):
            season.observe((day * 24 + hour) * HOUR, 3.0 if hour == 14 else 1.0)
    # After 20:00 comes 14:00 the next day: its factor, not the unseen 21:00's 1.
    assert season.outlook(1) == pytest.approx((season.factor(14), season.factor(14)))
    m = season.means[14]  # an EW mean of 3s, from a prior of 1
    assert m == pytest.approx(3.0, abs=0.05)
    assert season.factor(14) == pytest.approx(m * 7 / (m + 6))  # the other hours: exactly 1
    assert season.factor(3) == 1.0


def test_the_message_defines_the_reference_a_subscriber_can_recompute() -> None:
    """The definition in ``describe()``, implemented from its words, matches the rule."""
    task = RiskTask(horizon=3, clip=10.0)
    forecast = task.describe()["forecast"]
    grid = [tuple(abc) for abc in forecast["grid"]]
    block = forecast["block"]
    alpha = forecast["periodicity"]["alpha"]
    seasonal = np.tile(np.r_[np.full(12, 0.5), np.full(12, 1.5)], 1)
    prices = _garch_prices(1500, a=0.1, b=0.85, seasonal=seasonal, seed=4)
    ts = np.arange(1500) * HOUR
    want = _references(task, prices, ts)

    settings = load_settings(environ={}, features={"warmup_events": 60})
    fx = FeatureExtractor(settings.features)
    m: dict[int, float] = {}
    visits: dict[int, int] = {}
    nxt: dict[int, int] = {}
    last_hour = None
    g = None
    k = j = 0
    sums = np.zeros(len(grid))
    prev_one_step = prev_f = None

    def factor(h: int) -> float:
        return m[h] * len(m) / sum(m.values()) if h in m else 1.0

    def ahead(h: int, n: int) -> float:
        total = 0.0
        for _ in range(n):
            h = nxt.get(h, h)
            total += factor(h)
        return total / n

    for i, p in enumerate(prices):
        if fx.update(float(p), ts_ms=int(ts[i])) is None:
            continue
        r2, vol2, f = fx.ret**2, fx.vol**2, fx.fast_var
        hour = (int(ts[i]) // HOUR) % 24
        if last_hour is not None:
            nxt[last_hour] = hour
        last_hour = hour
        p_t = factor(hour)
        visits[hour] = visits.get(hour, 0) + 1
        w = max(1.0 / (visits[hour] + 1), alpha)
        m[hour] = m.get(hour, 1.0) + w * (r2 / vol2 - m.get(hour, 1.0))
        if g is None:
            g = np.full(len(grid), f)
        else:
            y = max(r2, task.floor * prev_f)
            q = y / prev_one_step
            sums += q - np.log(q) - 1
            down = fx.ret < 0
            g = np.array(
                [
                    (1 - a - b - c / 2) * vol2 + (a + c * down) * r2 / p_t + b * gk
                    for (a, b, c), gk in zip(grid, g, strict=True)
                ]
            )
        if j and j % block == 0:
            k = int(np.argmin(sums))  # the first on ties
        j += 1
        assert fx.ts_ms == ts[i]
        got = ahead(hour, 3) * math.sqrt(g[0] * g[k])
        assert want[i] == pytest.approx(got, rel=1e-9), i
        prev_one_step, prev_f = g * ahead(hour, 1), f


def test_a_rule_survives_a_snapshot_mid_stream() -> None:
    task = RiskTask(horizon=2, clip=10.0)
    prices = _garch_prices(400, a=0.1, b=0.85, seasonal=None, seed=5)
    ts = np.arange(400) * HOUR
    settings = load_settings(environ={}, features={"warmup_events": 60})
    fx, rule = FeatureExtractor(settings.features), task.label_rule()
    twin = None
    for i, p in enumerate(prices):
        if fx.update(float(p), ts_ms=int(ts[i])) is None:
            continue
        if i == 200:
            twin = stored(rule)
        a = rule.anchor(fx)
        if twin is not None:
            assert twin.anchor(fx) == a
    assert twin is not None and twin.fit.best == rule.fit.best


def test_bad_periodicity_is_named() -> None:
    with pytest.raises(ValueError, match="periodicity"):
        RiskTask(horizon=1, clip=10.0, periodicity=0.0)
