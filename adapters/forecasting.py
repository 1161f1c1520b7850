"""How risk forecasts are judged, as the field judges them: losses, the RiskMetrics baseline,
value at risk and expected shortfall, and the tests that compare forecasts.

numpy and scipy only (no torch), so the daemon's pure core and the benchmarks share it.

- :func:`qlike` and :func:`log_mse`: the variance-forecast losses. QLIKE is the primary one:
  among the losses that rank forecasts the same whatever the noise in the realised variance
  (Patton 2011), it is the least sensitive to that noise's extremes, and it is minimised in
  expectation by the true variance. The MSE of log variance is reported next to it only:
  it is minimised by the geometric mean of the realised variance, so a forecast biased low
  can win on it while losing on QLIKE.
- :func:`ewma_variance`: RiskMetrics (J.P. Morgan 1996), ``s2[t+1] = lam s2[t] + (1-lam) r[t]^2``.
- :func:`normal_var_es` and :func:`t_var_es`: value at risk and expected shortfall of a
  zero-mean normal, or of a Student t scaled to the forecast variance (:func:`fit_dof`
  estimates its degrees of freedom from standardised returns).
- :func:`kupiec`: Kupiec's (1995) proportion-of-failures test of VaR coverage, and
  :func:`christoffersen`: Christoffersen's (1998) test that violations do not cluster.
- :func:`diebold_mariano`: the Diebold-Mariano (1995) test of equal predictive accuracy, with
  the small-sample correction of Harvey, Leybourne and Newbold (1997).

>>> float(qlike(np.array(2.0), np.array(2.0)))
0.0
>>> ewma_variance(np.array([0.1, -0.2]), lam=0.5, init=0.04).round(4).tolist()
[0.04, 0.025, 0.0325]
>>> var, es = normal_var_es(0.0004, 0.05)
>>> round(float(var), 5), round(float(es), 5)
(0.0329, 0.04125)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

from .checks import positive_int

__all__ = [
    "Significance",
    "christoffersen",
    "diebold_mariano",
    "ewma_variance",
    "fit_dof",
    "kupiec",
    "log_mse",
    "normal_var_es",
    "qlike",
    "t_var_es",
]


class Significance(NamedTuple):
    """A test's statistic and its p-value."""

    statistic: float
    pvalue: float


def qlike(realised: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """QLIKE of variance ``forecast`` against ``realised`` variance, elementwise:
    ``r/f - log(r/f) - 1`` (0 for a perfect forecast, > 0 otherwise). Both must be > 0."""
    ratio = np.asarray(realised, dtype=np.float64) / np.asarray(forecast, dtype=np.float64)
    return ratio - np.log(ratio) - 1.0


def log_mse(realised: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Squared error of the log variance, elementwise. Both must be > 0."""
    diff = np.log(np.asarray(realised, dtype=np.float64)) - np.log(forecast)
    return diff * diff


def ewma_variance(returns: np.ndarray, *, lam: float = 0.94, init: float) -> np.ndarray:
    """RiskMetrics forecasts: ``out[t]`` is the variance of ``returns[t]`` forecast from the
    returns before it (``out[0] = init``), and ``out[n]`` the forecast of the next return."""
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    if not init > 0.0:
        raise ValueError(f"init must be positive, got {init!r}")
    r2 = np.square(np.asarray(returns, dtype=np.float64))
    out = np.empty(len(r2) + 1)
    out[0] = s2 = float(init)
    for t, x in enumerate(r2, 1):  # a recursion: no vectorised form is exact in float64
        s2 = lam * s2 + (1.0 - lam) * x
        out[t] = s2
    return out


def normal_var_es(
    variance: float | np.ndarray, level: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Value at risk and expected shortfall at tail probability ``level`` (e.g. 0.01, or an
    array of them broadcast with ``variance``) of a zero-mean normal return with
    ``variance``, both as positive losses."""
    level = _tail_probability(level)
    sd = np.sqrt(np.asarray(variance, dtype=np.float64))
    q = stats.norm.ppf(level)
    return -q * sd, sd * stats.norm.pdf(q) / level


def t_var_es(
    variance: float | np.ndarray, level: float | np.ndarray, dof: float
) -> tuple[np.ndarray, np.ndarray]:
    """Value at risk and expected shortfall at tail probability ``level`` (or an array of
    them) of a zero-mean Student-t return with ``dof`` degrees of freedom (> 2) scaled to
    ``variance``, both as positive losses: fatter tails than the normal's for the same
    variance."""
    level = _tail_probability(level)
    if not dof > 2.0:
        raise ValueError(f"dof must be above 2 (a finite variance), got {dof!r}")
    scale = np.sqrt(np.asarray(variance, dtype=np.float64) * (dof - 2.0) / dof)
    q = stats.t.ppf(level, dof)
    es = scale * stats.t.pdf(q, dof) / level * (dof + q * q) / (dof - 1.0)
    return -q * scale, es


def _tail_probability(level: float | np.ndarray) -> float | np.ndarray:
    """``level`` checked to be tail probabilities in (0, 0.5)."""
    a = np.asarray(level, dtype=np.float64)
    if not np.all((a > 0.0) & (a < 0.5)):
        raise ValueError(f"level must be in (0, 0.5), got {level!r}")
    return float(a) if a.ndim == 0 else a


def fit_dof(standardised: np.ndarray) -> float:
    """Maximum-likelihood degrees of freedom of a Student t with unit variance for returns
    divided by their forecast standard deviation (searched in (2.05, 100])."""
    z = np.asarray(standardised, dtype=np.float64)
    z = z[np.isfinite(z)]

    def nll(dof: float) -> float:
        scale = np.sqrt((dof - 2.0) / dof)
        return -float(stats.t.logpdf(z / scale, dof).sum() - len(z) * np.log(scale))

    res = optimize.minimize_scalar(nll, bounds=(2.05, 100.0), method="bounded")
    return float(res.x)


def kupiec(violations: int, n: int, level: float) -> Significance:
    """Kupiec's proportion-of-failures likelihood ratio: were ``violations`` in ``n`` days
    (losses beyond the VaR) as frequent as ``level``? chi-squared with one degree of freedom."""
    positive_int("n", n)
    if not 0 <= violations <= n:
        raise ValueError(f"violations must be in 0..{n}, got {violations}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    x, rate = violations, violations / n
    # xlogy: 0 * log 0 = 0, for no violations or nothing but violations.
    null = special.xlogy(n - x, 1.0 - level) + special.xlogy(x, level)
    alt = special.xlogy(n - x, 1.0 - rate) + special.xlogy(x, rate)
    lr = max(-2.0 * (null - alt), 0.0)
    return Significance(float(lr), float(stats.chi2.sf(lr, 1)))


def christoffersen(violations: np.ndarray) -> Significance:
    """Christoffersen's (1998) test of independence of VaR violations, in time order: does a
    violation make the next one likelier? The likelihood ratio of a two-state Markov chain
    against independent draws, chi-squared with one degree of freedom. Kupiec's test counts
    violations; this one sees them cluster (a forecast that follows the volatility too
    slowly). With fewer than two events, or no change of state, nothing can be told: (0, 1).
    """
    v = np.asarray(violations, dtype=bool)
    if v.ndim != 1:
        raise ValueError("violations must be 1-D")
    prev, nxt = v[:-1], v[1:]
    n00, n01 = int((~prev & ~nxt).sum()), int((~prev & nxt).sum())
    n10, n11 = int((prev & ~nxt).sum()), int((prev & nxt).sum())
    total = n00 + n01 + n10 + n11
    if not total:
        return Significance(0.0, 1.0)
    p01, p11 = n01 / max(n00 + n01, 1), n11 / max(n10 + n11, 1)
    p = (n01 + n11) / total
    null = special.xlogy(n00 + n10, 1.0 - p) + special.xlogy(n01 + n11, p)
    alt = (
        special.xlogy(n00, 1.0 - p01)
        + special.xlogy(n01, p01)
        + special.xlogy(n10, 1.0 - p11)
        + special.xlogy(n11, p11)
    )
    lr = max(-2.0 * (null - alt), 0.0)
    return Significance(float(lr), float(stats.chi2.sf(lr, 1)))


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int = 1) -> Significance:
    """Test of equal expected loss of two forecasts of the same ``horizon``-step targets.

    The statistic is negative when ``a`` has the lower loss. The long-run variance of the loss
    difference sums its autocovariances up to lag ``horizon - 1`` (as Diebold and Mariano
    did); the statistic carries the Harvey-Leybourne-Newbold correction and its two-sided
    p-value is from Student's t with n - 1 degrees of freedom. For ``horizon = 1`` it is the
    one-sample t-test of the differences.
    """
    d = np.asarray(loss_a, dtype=np.float64) - np.asarray(loss_b, dtype=np.float64)
    n = len(d)
    positive_int("horizon", horizon)
    if d.ndim != 1 or n < 2 or len(loss_b) != n:
        raise ValueError("loss_a and loss_b must be 1-D, of one length of at least 2")
    centred = d - d.mean()
    lrv = centred @ centred / n
    for lag in range(1, min(horizon, n)):
        lrv += 2.0 * (centred[lag:] @ centred[:-lag]) / n
    if not lrv > 0.0:  # every difference the same: no doubt about which is better, if any
        mean = float(d.mean())
        return Significance(0.0, 1.0) if mean == 0.0 else Significance(np.sign(mean) * np.inf, 0.0)
    dm = d.mean() / np.sqrt(lrv / n)
    h = horizon
    stat = dm * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return Significance(float(stat), float(2.0 * stats.t.sf(abs(stat), n - 1)))
