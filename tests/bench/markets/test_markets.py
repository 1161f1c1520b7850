"""The market benchmark's pieces: its series, its GARCH baseline, and a replay through the
daemon's core and learners scored end to end."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from arch import arch_model
from series_support import daily_series, first

from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.service.configs import tasks_of
from bench.markets.harness import replay_series
from bench.markets.risk import garch_forecasts, score_return, score_risk
from bench.markets.series import load_markets


def test_every_shipped_series_loads_in_time_order_with_positive_prices() -> None:
    markets, missing = load_markets()
    assert missing == []  # the bench extra installs every package
    names = [s.name for s in markets]
    assert names[:3] == ["bitcoin", "brent", "apple"]
    assert {"sp500", "nasdaq", "wti", "dax", "smi", "cac", "ftse", "googl", "eurusd", "jfc"} <= set(
        names
    )
    for s in markets:
        assert len(s) > 500 and (s.price > 0).all() and np.isfinite(s.price).all()
        assert (np.diff(s.ts_ms) > 0).all(), s.name
    wti = next(s for s in markets if s.name == "wti")
    assert "without a positive price dropped" in wti.description  # 2020-04-20 and gaps


def test_garch_forecasts_are_archs_own_one_step_forecasts() -> None:
    rng = np.random.default_rng(0)
    r = np.r_[0.0, rng.standard_t(6, 1500) * 0.01]
    out = garch_forecasts(r, 1200, refit=20, window=1000)
    assert np.isnan(out[:1200]).all() and np.isfinite(out[1200:]).all()
    # At a refit, the forecast is the fitted model's own forecast of the next variance.
    for t0 in (1200, 1220):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = arch_model(r[t0 + 1 - 1000 : t0 + 1] * 100, mean="Zero", p=1, q=1).fit(disp="off")
        want = float(res.forecast(horizon=1, reindex=False).variance.iloc[-1, 0]) / 100**2
        assert out[t0] == pytest.approx(want, rel=1e-6)


def _regimes(n: int = 1600, seed: int = 1) -> MarketSeries:
    rng = np.random.default_rng(seed)
    vol = np.where((np.arange(n) // 400) % 2 == 0, 0.005, 0.02)
    return daily_series("regimes", "R", rng.normal(0, vol), "volatility regimes")


def test_a_replay_is_scored_against_the_baselines_without_look_ahead() -> None:
    series = _regimes()
    settings = load_settings(
        environ={},
        features={"label_horizon": 1},
        adaptation={"tasks": ["return", "risk"], "isolation": "thread"},
    )
    replay = replay_series(series, settings, meta_every=100, meta_until=len(series) // 2)
    assert replay.meta_updates > 0 and replay.shifts
    (_, task) = tasks_of(settings)
    risk = score_risk(series, replay, task)
    assert risk["scored"] > 700
    f = risk["forecasters"]
    assert set(f) == {
        "adaptd",
        "adaptd, no adaptation",
        "adaptd's reference",
        "EWMA (features' fast_var)",
        "RiskMetrics",
        "GARCH(1,1)",
    }
    for figures in f.values():
        assert np.isfinite(figures["qlike"]) and figures["qlike"] > 0
        for key in ("var", "var_calibrated"):
            assert 0 <= figures[key]["0.05"]["rate"] <= 1
            assert 0 <= figures[key]["0.01"]["independence_pvalue"] <= 1
    assert risk["best_baseline"] in ("RiskMetrics", "GARCH(1,1)")
    ret = score_return(series, replay, settings.features.label_clip)
    assert ret["scored"] == risk["scored"] and ret["zero_forecast_mse"] > 0
    assert np.isnan(replay.tasks["risk"].live[: settings.features.warmup_events]).all()


def test_a_forecast_depends_only_on_the_events_before_it() -> None:
    series = _regimes(1200, seed=2)
    settings = load_settings(
        environ={}, features={"label_horizon": 1}, adaptation={"tasks": ["risk"]}
    )
    full = replay_series(series, settings, meta_every=100, meta_until=500)
    cut = 900
    prefix = first(series, cut)
    early = replay_series(prefix, settings, meta_every=100, meta_until=500)
    for name in ("live", "init"):
        a = getattr(full.tasks["risk"], name)[:cut]
        b = getattr(early.tasks["risk"], name)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(full.fast_var[:cut], early.fast_var)


def test_a_meta_update_the_learner_undoes_is_counted_and_the_replay_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As the daemon's meta-trainer does: a round whose update made the initialisation
    # non-finite (the learner undoes it and raises) is an error, not the end of the run.
    from adaptd.daemon.learner.learners import TaskLearners

    def broken(self: TaskLearners, task: str, episodes: object) -> None:
        raise FloatingPointError("a meta-update made the initialisation non-finite; undone")

    monkeypatch.setattr(TaskLearners, "meta_train", broken)
    series = _regimes(800)
    settings = load_settings(
        environ={}, features={"label_horizon": 1}, adaptation={"tasks": ["risk"]}
    )
    replay = replay_series(series, settings, meta_every=100, meta_until=400)
    assert replay.meta_updates == 0 and replay.meta_errors > 0
    assert np.isfinite(replay.tasks["risk"].init[-1])


def test_calendar_features_go_where_the_series_dates_mean_something() -> None:
    from bench.markets.__main__ import CALENDAR, settings_for

    markets, _ = load_markets()
    names = {s.name for s in markets}
    assert set(CALENDAR) <= names
    assert settings_for("eurusd").features.calendar == ("hour_of_day", "day_of_week")
    assert settings_for("eurusd", calendar=False).features.calendar == ()
    for invented in ("dax", "smi", "cac", "ftse", "bitcoin"):  # no real daily dates
        assert settings_for(invented).features.calendar == ()
    assert "quarter_end" in settings_for("sp500").features.calendar


def test_on_hedge_an_unserved_policy_is_hedge_and_the_other_ensemble_is_scored() -> None:
    from bench.markets.__main__ import goals, on_ensemble, replay_and_score, settings_for

    series = _regimes(800)
    settings = settings_for(series.name)  # the strategy task's default: Hedge
    replay = replay_series(series, settings, meta_every=100, meta_until=400)
    trace = replay.tasks["strategy"]
    rows = np.flatnonzero(~np.isnan(trace.live[:, 0]))
    first_live = trace.publish_rows[0] + 1 if trace.publish_rows else len(series)
    before = rows[rows < first_live]
    assert len(before) > 100
    # While no policy is live the subscriber holds the baseline: Hedge's log-weights.
    logs = trace.live[before]
    np.testing.assert_allclose(np.exp(logs).sum(axis=1), 1.0, rtol=1e-6)
    assert np.ptp(logs[-1]) > 0.0  # Hedge has moved off the equal weights

    scored = on_ensemble(series, None, "equal")
    assert set(scored) == {
        "ensemble",
        "sharpe",
        "psr",
        "no_adaptation_sharpe",
        "published",
        "retired",
    }
    assert np.isfinite(scored["sharpe"]) and 0.0 <= scored["psr"] <= 1.0
    result = replay_and_score(series, settings_for(series.name))
    result["other_ensemble"] = scored
    counted = goals({series.name: result})
    keys = ("both", "above_equal_weight")
    both, above = (counted[f"strategy_other_ensemble_{k}_on"] for k in keys)
    assert 0 <= both <= above <= 1
