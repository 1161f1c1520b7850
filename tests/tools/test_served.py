"""What a demo subscriber held at each event: the baselines until a policy arrives, then the
policy, as its message defines it; and the tables and plot panels made from it."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from rich.console import Console
from series_support import daily_series

from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.features import FeatureExtractor
from adaptd.daemon.core.policy import build_message
from adaptd.daemon.core.tasks.selection import StrategyTask
from adaptd.tools.served import serve
from adaptd.tools.task_report import (
    draw_risk,
    draw_strategy,
    regime_choices,
    risk_table,
    runs,
    strategy_table,
)

SETTINGS = load_settings(
    environ={},
    adaptation={
        "tasks": ["risk", "strategy"],
        # The equal-weight ensemble, whose baseline these tests read off; Hedge's has its own.
        "task_options": {"strategy": {"ensemble": "equal"}},
    },
)
N = 400


def _series() -> MarketSeries:
    rng = np.random.default_rng(5)
    return daily_series("walk", "W", rng.normal(0.001, 0.01, N), "a walk")


def _constant(model_id: str, d: int, bias: list[float], link: str, skip: int = 0):
    k = len(bias)
    weights = {
        "layers.0.weight": np.zeros((4, d), np.float32),
        "layers.0.bias": np.zeros(4, np.float32),
        "layers.2.weight": np.zeros((k, 4), np.float32),
        "layers.2.bias": np.array(bias, np.float32),
    }
    return build_message(
        model_id=model_id,
        version=1,
        parent_version=0,
        stream="W",
        weights=weights,
        architecture={"activation": "tanh", **({"skip": skip} if skip else {})},
        features={},
        task={"link": link},
    )


def test_before_any_policy_a_subscriber_holds_the_baselines() -> None:
    out = serve(_series(), SETTINGS, {}, N, shifts=[])
    assert out.risk is not None and out.strategy is not None
    ok = ~np.isnan(out.risk.forecast)
    assert ok.sum() == N - SETTINGS.features.warmup_events
    np.testing.assert_allclose(out.risk.forecast[ok], out.risk.reference[ok])
    q = out.risk.scores["qlike"]
    assert q["adaptd"] == q["reference"]
    m = out.strategy.scores
    assert m["adaptd"] == pytest.approx(m["equal weight"], rel=1e-12)
    assert set(out.strategy.selected()[ok]) == {-1}


def test_from_its_arrival_a_subscriber_uses_the_policy() -> None:
    series = _series()
    d = len(SETTINGS.features.momentum_horizons) + 6
    at = 250
    risk = _constant("W/risk", d, [np.log(2.0)], "exp")  # twice the reference variance
    logits = [0.0, 30.0, 0.0, 0.0, 0.0]  # all weight on the volatility-targeted long
    picks = _constant("W/strategy", d, logits, "softmax")
    out = serve(series, SETTINGS, {"W/risk": [(at, risk)], "W/strategy": [(at, picks)]}, N, [at])
    assert out.risk is not None and out.strategy is not None
    ratio = out.risk.forecast / out.risk.reference
    assert ratio[at:] == pytest.approx(2.0, rel=1e-6)
    assert ratio[100:at] == pytest.approx(1.0)
    long = StrategyTask(horizon=5, clip=10.0, ensemble="equal").strategies.index("long")
    held = out.strategy.positions
    np.testing.assert_allclose(out.strategy.position[at : N - 1], held[at : N - 1, long])
    np.testing.assert_allclose(out.strategy.position[100:at], held[100:at].mean(axis=1))
    assert [name for _, _, name in regime_choices(out)] == ["equal", "long"]

    console = Console(width=200, record=True)
    console.print(risk_table([out]), strategy_table([out]))
    text = console.export_text()
    assert "W" in text and "equal, long" in text
    fig = Figure()
    a, b = fig.subplots(2, 1)
    when = series.ts_ms.astype("datetime64[ms]")
    draw_risk(a, when, out)
    draw_strategy(b, when, out)
    assert len(a.lines) == 3 and b.texts


def test_on_hedge_a_subscriber_holds_hedge_then_the_policy_that_corrects_it() -> None:
    settings = load_settings(
        environ={},
        adaptation={"tasks": ["strategy"], "task_options": {"strategy": {"ensemble": "hedge"}}},
    )
    series = _series()
    d = len(settings.features.momentum_horizons) + 6 + 5  # the features, then Hedge's five
    at = 250
    # A network that outputs 0 forwards Hedge's log-weights; the message says it adds them.
    zero = _constant("W/strategy", d, [0.0] * 5, "softmax", skip=5)
    out = serve(series, settings, {"W/strategy": [(at, zero)]}, N, [at])
    assert out.strategy is not None
    rule = StrategyTask(horizon=5, clip=10.0, ensemble="hedge").label_rule()
    ok = np.flatnonzero(~np.isnan(out.strategy.positions[:, 0]))
    weights, feats = [], FeatureExtractor(settings.features)
    for t in range(N):  # the subscriber's Hedge is the task's own, before and after `at`
        if feats.update(float(series.price[t]), ts_ms=int(series.ts_ms[t])) is not None:
            rule.anchor(feats)
            weights.append(np.exp(rule.extra()))
    # Hedge follows the leader by default: the others' weights go down to 1e-50, where the
    # network's float32 and numpy's float64 part; to a position they are all 0.
    np.testing.assert_allclose(out.strategy.weights[ok], np.array(weights), rtol=1e-5, atol=1e-9)
    assert np.ptp(out.strategy.weights[ok[-1]]) > 0.01  # Hedge has moved off equal weights


def test_a_subscriber_reads_the_volumes_the_daemon_read() -> None:
    # A risk policy whose log ratio is volume_z itself: what it forecasts at each event is
    # the daemon's feature, computed from the stream's volumes as the daemon computes it.
    settings = load_settings(environ={}, adaptation={"tasks": ["risk"]})
    rng = np.random.default_rng(6)
    walk = _series()
    series = MarketSeries(
        walk.name, walk.stream, walk.ts_ms, walk.price, np.exp(rng.normal(7.0, 1.0, N)), {}, "v"
    )
    feats = FeatureExtractor(settings.features)
    names = feats.names
    d, k = len(names), names.index("volume_z")
    weight = np.zeros((1, d), np.float32)
    weight[0, k] = 1.0
    linear = build_message(
        model_id="W/risk",
        version=1,
        parent_version=0,
        stream="W",
        weights={"layers.0.weight": weight, "layers.0.bias": np.zeros(1, np.float32)},
        architecture={"activation": "tanh"},
        features={},
        task={"link": "exp"},
    )
    out = serve(series, settings, {"W/risk": [(0, linear)]}, N, [])
    assert out.risk is not None
    expected = np.full(N, np.nan)
    for t in range(N):
        row = feats.update(float(series.price[t]), volume=float(series.volume[t]))
        if row is not None:
            expected[t] = np.exp(row[k])
    ok = ~np.isnan(expected)
    assert np.ptp(expected[ok]) > 1.0  # the volumes move the feature
    ratio = out.risk.forecast[ok] / out.risk.reference[ok]
    np.testing.assert_allclose(ratio, expected[ok], rtol=1e-5)


def test_a_strategy_held_over_successive_stretches_is_named_once_with_their_count() -> None:
    assert runs([]) == ""
    assert runs(["equal", "long"]) == "equal, long"
    names = ["trend_20", "trend_20", "long", "trend_20", "flat", "flat", "flat"]
    assert runs(names) == "trend_20 (2 stretches), long, trend_20, flat (3 stretches)"
