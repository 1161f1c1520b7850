"""The risk and return tasks on one series: adaptd's forecasts against the field's baselines.

The series is replayed through the daemon's core and learners in-process
(:func:`bench.markets.harness.replay_series`) with a label horizon of one event, so every
forecast is of the next return's variance, as RiskMetrics and GARCH forecast it. The
initialisation is meta-trained on the earlier half only; everything is scored on the later
half, each forecast made from what was known when its event arrived:

- adaptd: what a subscriber holds at that event: the latest published policy (adapted after
  a shift, or the baseline published in place of a policy that continuous validation
  retired), or before any, the task's baseline;
- adaptd, no adaptation: the meta-learned initialisation;
- adaptd's reference: the risk task's reference variance ``s2_t`` (z = 0, the task's baseline:
  the variance-targeting GARCH recursion by default);
- EWMA (features' fast_var): the features' fast EW variance;
- RiskMetrics: EWMA with lambda = 0.94 (J.P. Morgan 1996);
- GARCH(1,1): the ``arch`` package's, zero mean, normal, refitted every ``refit`` events on
  the last ``window`` returns, and filtered with the fitted parameters in between.

QLIKE is against the squared next return, floored at ``FLOOR`` times the reference variance
(a zero return has no log; the count is reported); the MSE of log variance is reported
next to it. VaR is that of a zero-mean normal with the forecast variance at the fixed levels
(``var``), and, for every forecaster, at the adaptive levels of the risk task's message
(``var_calibrated``: adaptive conformal inference with the task's ``calibration`` step, run
from each forecaster's first forecast, as a subscriber computes it); for adaptd also that of
a Student t whose degrees of freedom were fitted on the earlier half, at the fixed levels
(``var_t``). Kupiec's test counts the violations; Christoffersen's tests that they do not
cluster.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from adaptd.adapters.conformal import var_path
from adaptd.adapters.forecasting import (
    christoffersen,
    diebold_mariano,
    ewma_variance,
    fit_dof,
    kupiec,
    log_mse,
    qlike,
)
from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.core.tasks.risk import RiskTask

from .harness import Replay

__all__ = ["FLOOR", "garch_forecasts", "quantiles_ms", "score_return", "score_risk"]

FLOOR = 0.01
LEVELS = (0.01, 0.05)
BASELINES = ("RiskMetrics", "GARCH(1,1)")


def log_returns(series: MarketSeries) -> np.ndarray:
    """``r[t]`` = log return into event t (``r[0] = 0``)."""
    lp = np.log(series.price.astype(np.float64))
    return np.diff(lp, prepend=lp[0])


def garch_forecasts(
    r: np.ndarray, start: int, *, refit: int = 20, window: int = 1000
) -> np.ndarray:
    """``out[t]``: GARCH(1,1) variance of ``r[t+1]`` for ``t >= start`` (NaN before)."""
    from arch import arch_model

    n = len(r)
    out = np.full(n, np.nan)
    scale = 100.0  # arch's optimiser prefers returns in percent
    for t0 in range(start, n, refit):
        lo = max(1, t0 + 1 - window)
        fit_r = r[lo : t0 + 1] * scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = arch_model(fit_r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal").fit(
                disp="off"
            )
        omega, alpha, beta = (float(res.params[k]) for k in ("omega", "alpha[1]", "beta[1]"))
        s2 = float(res.conditional_volatility[-1]) ** 2  # the variance of r[t0]
        for t in range(t0, min(t0 + refit, n)):
            s2 = omega + alpha * (r[t] * scale) ** 2 + beta * s2  # now of r[t+1]
            out[t] = s2 / scale**2
    return out


def _kupiec(r_next: np.ndarray, var: np.ndarray) -> dict[str, Any]:
    """Coverage of ``var`` (``(events, levels)`` for ``LEVELS``) against the next returns."""
    out = {}
    for k, level in enumerate(LEVELS):
        violated = r_next < -var[:, k]
        hits = int(violated.sum())
        test = kupiec(hits, len(r_next), level)
        out[f"{level:g}"] = {
            "violations": hits,
            "rate": hits / len(r_next),
            "lr": test.statistic,
            "pvalue": test.pvalue,
            "rejected_at_5pct": test.pvalue < 0.05,
            "independence_pvalue": christoffersen(violated).pvalue,
        }
    return out


def score_risk(
    series: MarketSeries, replay: Replay, task: RiskTask, *, refit: int = 20
) -> dict[str, Any]:
    """The risk figures of one replayed series (see the module's description); ``task`` is
    the risk task replayed (its tail and calibration define ``var_calibrated``)."""
    r = log_returns(series)
    n = len(r)
    start = n // 2
    trace = replay.tasks["risk"]
    ref = replay.fast_var if trace.reference is None else trace.reference
    rm = ewma_variance(r[1:], lam=0.94, init=float(np.mean(r[1:21] ** 2)) or 1e-8)[:n]
    forecasts = {
        "adaptd": ref * np.exp(trace.live),
        "adaptd, no adaptation": ref * np.exp(trace.init),
        "adaptd's reference": ref,
        "EWMA (features' fast_var)": replay.fast_var,
        "RiskMetrics": rm,
        "GARCH(1,1)": garch_forecasts(r, start, refit=refit),
    }
    t = np.arange(start, n - 1)
    t = t[np.all([np.isfinite(f[t]) for f in forecasts.values()], axis=0)]
    r_next = r[t + 1]
    floor = FLOOR * replay.fast_var[t]
    realised = np.maximum(r_next**2, floor)
    losses = {k: qlike(realised, f[t]) for k, f in forecasts.items()}
    best = min(BASELINES, key=lambda k: losses[k].mean())
    dm = diebold_mariano(losses["adaptd"], losses[best])
    outcome = np.append(r[1:], np.nan)  # outcome[t] = r[t + 1], what VaR_t is about
    figures = {
        name: {
            "qlike": float(losses[name].mean()),
            "log_mse": float(log_mse(realised, f[t]).mean()),
            "var": _kupiec(r_next, var_path(outcome, f, LEVELS)[0][t]),
            # The task's own tail and calibration, as its message defines them.
            "var_calibrated": _kupiec(
                r_next, var_path(outcome, f, LEVELS, dof=task.dof, gamma=task.calibration)[0][t]
            ),
        }
        for name, f in forecasts.items()
    }
    # The risk task's Student-t tail (its `dof` option), with degrees of freedom fitted on
    # the earlier half's returns over adaptd's forecasts: as a deployment configured from
    # history would publish it.
    early = np.arange(1, start - 1)
    early = early[np.isfinite(forecasts["adaptd"][early])]
    dof = fit_dof(r[early + 1] / np.sqrt(forecasts["adaptd"][early]))
    var_t = var_path(outcome, forecasts["adaptd"], LEVELS, dof=dof)[0][t]
    figures["adaptd"]["var_t"] = {"dof": dof, **_kupiec(r_next, var_t)}
    ratio = figures["adaptd"]["qlike"] / figures[best]["qlike"]
    seconds = [o[3] for o in trace.outcomes]
    return {
        "scored": len(t),
        "floored": int((r_next**2 < floor).sum()),
        "forecasters": figures,
        "best_baseline": best,
        "qlike_ratio_to_best": ratio,
        "dm_vs_best": {"statistic": dm.statistic, "pvalue": dm.pvalue},
        "adaptations": trace.adaptations,
        "published": trace.published,
        "retired": trace.retired,
        "query_loss": _query_losses(trace.outcomes),
        "adapt_ms": quantiles_ms(seconds),
    }


def score_return(series: MarketSeries, replay: Replay, clip: float) -> dict[str, Any]:
    """The return task's prequential squared error on the later half, next to the zero
    forecast's (its baseline)."""
    lp = np.log(series.price.astype(np.float64))
    n = len(lp)
    trace = replay.tasks["return"]
    t = np.arange(n // 2, n - 1)
    t = t[np.isfinite(trace.live[t]) & np.isfinite(replay.vol[t])]
    y = np.clip((lp[t + 1] - lp[t]) / replay.vol[t], -clip, clip)
    live = float(np.mean((trace.live[t] - y) ** 2))
    init = float(np.mean((trace.init[t] - y) ** 2))
    zero = float(np.mean(y**2))
    return {
        "scored": len(t),
        "live_mse": live,
        "no_adaptation_mse": init,
        "zero_forecast_mse": zero,
        "live_over_zero": live / zero,
        "adaptations": trace.adaptations,
        "published": trace.published,
        "retired": trace.retired,
        "query_loss": _query_losses(trace.outcomes),
        "adapt_ms": quantiles_ms([o[3] for o in trace.outcomes]),
    }


def _query_losses(outcomes: list[tuple[float, float, float, float]]) -> dict[str, float]:
    if not outcomes:
        return {}
    a = np.array([o[:3] for o in outcomes])
    return {
        "before": float(a[:, 0].mean()),
        "after": float(a[:, 1].mean()),
        "from_scratch": float(a[:, 2].mean()),
    }


def quantiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ms = np.array(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}
