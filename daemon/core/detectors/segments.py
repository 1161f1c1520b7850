"""Conjugate segment models for :class:`~.bocpd.BOCPD`: what one segment's values look like.

Each model keeps one *hypothesis* per kept run length (a segment start), oldest first, in
numpy arrays allocated once and filled up to ``n``; everything is vectorised over the
hypotheses and kept in log space. The recursion in :mod:`.bocpd` needs five operations:

``start(z, centre)``
    open a hypothesis from the prior (its location prior centred at ``centre``, or at the
    prior's ``mu0`` when None), having absorbed ``z``, its first value; returns the prior's
    log predictive density of ``z`` (a new segment's predictive ignores the past);
``observe(z)``
    every hypothesis' log predictive density of ``z``, then ``z`` absorbed into each (one
    pass: the Student-t's kernel is the updated rate over the current one);
``log_predictive(z)``
    the densities alone, nothing absorbed; ``prior_log_predictive(z, centre)`` the same
    for a new segment;
``drop(j)``
    forget hypothesis ``j`` (the others keep their order);
``predictive_mean(j)``
    hypothesis ``j``'s one-step-ahead predictive mean.

Both models share the noise model: Gaussian with an unknown variance ``sigma^2``, whose
precision is Gamma(``alpha0``, ``beta0``) a priori; the location parameters are Gaussian
given ``sigma^2`` with covariance ``sigma^2 V0``. The predictive of the next value is then a
Student-t with ``2 alpha`` degrees of freedom, location ``x . m`` and squared scale
``(beta / alpha) (1 + x' V x)``, where ``x`` is the next value's regressor. Its normalising
term ``lgamma(alpha + 1/2) - lgamma(alpha)`` is carried from value to value
(``lgamma(a + 1) - lgamma(a + 1/2) = log(a) - ratio``), not recomputed.

:class:`NormalGamma` ("constant"): one mean per segment, ``V0 = 1 / kappa0``.

:class:`LinearTrend` ("trend"): ``y = a + b s + noise`` at position ``s = 0, 1, ...`` within
the segment, a Normal-Inverse-Gamma prior on ``(a, b, sigma^2)``: ``a`` as the constant
model's mean, ``b`` with mean 0 and variance ``sigma^2 slope_scale^2`` (so ``slope_scale``
is the slope's prior scale in noise standard deviations per value, a pure number), the two
independent given ``sigma^2``. Bayesian linear regression, kept in *local* coordinates:
each hypothesis holds the posterior of ``(level at the next position, slope)``, so the
regressor is always ``x = (1, 0)``, ``x' V x`` is ``V[0, 0]``, and after each value the
coordinates move one step on (level += slope, ``V <- T V T'`` with ``T = [[1, 1], [0, 1]]``,
an exact change of variables, no added noise). In these coordinates ``V`` stays of the order
of ``1 / n`` (not ``s^2 / n``), so a segment thousands of values long keeps its accuracy;
the covariance update is closed-form 2x2 algebra that keeps it positive definite.

**The "trend" defaults, measured** (:class:`~.bocpd.BOCPD` with its other defaults, as
measured there for ``"constant"``, other seeds; ``"constant"`` on the same streams in
brackets). In control 0.17 false alarms per 1,000 (0.22). Mean +1 sd 62 %, 14 values, 36 %
(98 %, 16, 62 %); +2 sd 100 %, 4, 88 %; +3 sd 100 %, 2, 100 %; sd x2 95 %, 12, 82 %; sd x3
100 %, 3, 92 %; sd x0.5 65 %, 27, 73 % (80 %, 25, 75 %): a line has more ways than a mean to
absorb a small change, so small ones are found less often. A flat stream whose slope becomes
0.1, 0.2, 0.5 sd per value: found 100 % each, after 17, 11, 6 values, located within 5 in
20, 70, 100 % (a kink is located late: the first values after it still fit the old line). A
+2 sd jump on a slope of 0.1 sd per value: 100 %, 4, 88 % (2 %: the constant model alarms
along the trend and then goes blind). A steady slope of 0.05 sd per value: 0.15 false alarms
per 1,000. ``slope_scale``: 0.1 (a slope of one warm-up sd per 10 values within one prior
sd) gave 0.22 false alarms per 1,000 and found mean +1 in 68 %, but the conjugate prior
scales the slope's spread with the noise's, so a slope of many noise sds per value inflates
a new segment's variance (``beta`` gains about ``b^2 / (2 slope_scale^2)``, ``b`` in warm-up
sds per value) and a +3 sd jump on a slope of 3 sd per value was never found; 0.3 (a slope
of one warm-up sd per 3 values, the steepest a 10-value warm-up that is all trend holds,
within one prior sd) found it 25 times in 30, 1.0 in 30 of 30 but mean +1 only in 50 %.
Beyond about 5 noise sds per value no ``slope_scale`` helps: the warm-up's sd, which sets
the units and the noise prior, is then mostly trend. About 40 µs per value.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LinearTrend", "NormalGamma", "log_predictive", "logsumexp"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _half_gamma_ratio(alpha: float) -> float:
    """``lgamma(alpha + 1/2) - lgamma(alpha)``: the Student-t's normalising term."""
    return math.lgamma(alpha + 0.5) - math.lgamma(alpha)


def log_predictive(
    x: float,
    mu: np.ndarray | float,
    kappa: np.ndarray | float,
    alpha: np.ndarray | float,
    beta: np.ndarray | float,
) -> np.ndarray:
    """The Normal-Gamma posterior predictive's log density at ``x`` (a Student-t).

    ``2 * alpha`` degrees of freedom, location ``mu``, squared scale
    ``beta * (kappa + 1) / (alpha * kappa)``; vectorised over the parameters. The detector
    evaluates the same expression with its gamma-function term carried from value to value
    (:meth:`~.bocpd.BOCPD.log_predictive` exposes that one).
    """
    mu, kappa, alpha, beta = (np.asarray(a, dtype=float) for a in (mu, kappa, alpha, beta))
    ratio = np.vectorize(_half_gamma_ratio, otypes=[float])(alpha)
    return _ng_log_predictive(float(x), mu, kappa, alpha, beta, np.log(beta), ratio)[0]


def _ng_log_predictive(
    x: float,
    mu: np.ndarray,
    kappa: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    log_beta: np.ndarray,
    ratio: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log Student-t density at ``x``, and ``beta`` and its log after updating with ``x``.

    With nu = 2 alpha and nu * scale^2 = 2 beta (kappa + 1) / kappa, the t's kernel
    ``1 + (x - mu)^2 / (nu scale^2)`` is exactly ``beta' / beta``, the updated rate over the
    current one, so one logarithm serves both the density and the update.
    """
    dev = x - mu
    beta_new = beta + (0.5 * kappa / (kappa + 1.0)) * (dev * dev)
    log_beta_new = np.log(beta_new)
    log_density = (
        ratio
        - _HALF_LOG_2PI
        - 0.5 * np.log1p(1.0 / kappa)
        - 0.5 * log_beta
        - (alpha + 0.5) * (log_beta_new - log_beta)
    )
    return log_density, beta_new, log_beta_new


class _Segments:
    """The arrays, the noise prior and the bookkeeping both models share."""

    __slots__ = (
        "_alpha",
        "_beta",
        "_log_beta",
        "_log_beta0",
        "_ratio",
        "_ratio0",
        "alpha0",
        "beta0",
        "kappa0",
        "mu0",
        "n",
    )
    _ARRAYS: tuple[str, ...] = ("_alpha", "_beta", "_log_beta", "_ratio")

    def __init__(self, capacity: int) -> None:
        for name in self._ARRAYS:
            setattr(self, name, np.zeros(capacity))
        self.n = 0
        self.set_prior(0.0, 1.0, 2.0, 1.0)

    def set_prior(self, mu0: float, kappa0: float, alpha0: float, beta0: float) -> None:
        """``(mu0, kappa0, alpha0, beta0)``: the location's prior mean and precision factor
        (variance ``sigma^2 / kappa0``) and the noise precision's Gamma prior."""
        self.mu0, self.kappa0, self.alpha0, self.beta0 = mu0, kappa0, alpha0, beta0
        self._log_beta0 = math.log(beta0)
        self._ratio0 = _half_gamma_ratio(alpha0)

    def prior_log_predictive(self, z: float, centre: float | None = None) -> float:
        """A new segment's log predictive density of ``z`` (centred at ``centre``)."""
        return self._prior_step(z, centre)[0]

    def _prior_step(self, z: float, centre: float | None) -> tuple[float, ...]:
        raise NotImplementedError

    def drop(self, j: int) -> None:
        """Forget hypothesis ``j``; the later ones move down one place."""
        n = self.n
        for name in self._ARRAYS:
            array = getattr(self, name)
            array[j : n - 1] = array[j + 1 : n]  # numpy copies overlapping slices safely
        self.n = n - 1


class NormalGamma(_Segments):
    """A constant mean per segment under the Normal-Gamma prior (module docstring)."""

    __slots__ = ("_kappa", "_mu")
    _ARRAYS = (*_Segments._ARRAYS, "_kappa", "_mu")

    def _prior_step(self, z: float, centre: float | None) -> tuple[float, ...]:
        """The prior's log predictive density of ``z``; its mean and ``beta`` (and log)
        after absorbing ``z``: the expressions of :func:`_ng_log_predictive` on scalars."""
        mu0 = self.mu0 if centre is None else centre
        k0, a0, lb0 = self.kappa0, self.alpha0, self._log_beta0
        beta = self.beta0 + (0.5 * k0 / (k0 + 1.0)) * (z - mu0) ** 2
        log_beta = math.log(beta)
        density = (
            self._ratio0
            - _HALF_LOG_2PI
            - 0.5 * math.log1p(1.0 / k0)
            - 0.5 * lb0
            - (a0 + 0.5) * (log_beta - lb0)
        )
        return density, (k0 * mu0 + z) / (k0 + 1.0), beta, log_beta

    def start(self, z: float, centre: float | None = None) -> float:
        """Open a hypothesis that has absorbed ``z``; the prior's log density of ``z``."""
        density, mu, beta, log_beta = self._prior_step(z, centre)
        n = self.n
        k0, a0 = self.kappa0, self.alpha0
        self._kappa[n] = k0 + 1.0
        self._alpha[n] = a0 + 0.5
        self._mu[n] = mu
        self._beta[n] = beta
        self._log_beta[n] = log_beta
        self._ratio[n] = math.log(a0) - self._ratio0
        self.n = n + 1
        return density

    def _arrays(self) -> tuple[np.ndarray, ...]:
        n = self.n
        return tuple(getattr(self, a)[:n] for a in ("_mu", "_kappa", "_alpha", "_beta"))

    def log_predictive(self, z: float) -> np.ndarray:
        """Each hypothesis' log predictive density of ``z`` (nothing absorbed)."""
        mu, kappa, alpha, beta = self._arrays()
        n = self.n
        args = (self._log_beta[:n], self._ratio[:n])
        return _ng_log_predictive(z, mu, kappa, alpha, beta, *args)[0]

    def observe(self, z: float) -> np.ndarray:
        """Each hypothesis' log predictive density of ``z``, then ``z`` absorbed."""
        mu, kappa, alpha, beta = self._arrays()
        n = self.n
        ratio = self._ratio[:n]
        density, beta_new, log_beta_new = _ng_log_predictive(
            z, mu, kappa, alpha, beta, self._log_beta[:n], ratio
        )
        mu += (z - mu) / (kappa + 1.0)
        beta[:] = beta_new
        self._log_beta[:n] = log_beta_new
        # alpha before its half step is what the gamma-function term needs
        np.subtract(np.log(alpha), ratio, out=ratio)
        kappa += 1.0
        alpha += 0.5
        return density

    def predictive_mean(self, j: int) -> float:
        """Hypothesis ``j``'s predictive mean for the next value."""
        return float(self._mu[j])


class LinearTrend(_Segments):
    """A linear trend per segment: Bayesian linear regression on the position within the
    segment under a Normal-Inverse-Gamma prior (module docstring)."""

    __slots__ = ("_level", "_slope", "_v00", "_v01", "_v11", "slope_scale")
    _ARRAYS = (*_Segments._ARRAYS, "_level", "_slope", "_v00", "_v01", "_v11")

    def __init__(self, capacity: int, slope_scale: float = 0.3) -> None:
        if not (math.isfinite(slope_scale) and slope_scale > 0.0):
            raise ValueError(f"slope_scale must be finite and > 0, got {slope_scale!r}")
        self.slope_scale = float(slope_scale)
        super().__init__(capacity)

    def _prior_step(self, z: float, centre: float | None) -> tuple[float, ...]:
        """The prior's log density of ``z`` and its posterior after ``z``, moved on to the
        next position: ``observe`` on one hypothesis with ``m = (centre, 0)``, ``V =
        diag(1 / kappa0, slope_scale^2)``, in scalars (``V[0, 1] = 0`` simplifies it)."""
        level = self.mu0 if centre is None else centre
        v00, v11 = 1.0 / self.kappa0, self.slope_scale**2
        lb0 = self._log_beta0
        dev = z - level
        g = 1.0 / (1.0 + v00)
        beta = self.beta0 + 0.5 * g * dev * dev
        log_beta = math.log(beta)
        density = (
            self._ratio0
            - _HALF_LOG_2PI
            - 0.5 * math.log1p(v00)
            - 0.5 * lb0
            - (self.alpha0 + 0.5) * (log_beta - lb0)
        )
        # absorbed: level + v00 g dev, slope 0, V = diag(v00 g, v11); then one step on
        return density, level + v00 * g * dev, v00 * g + v11, v11, beta, log_beta

    def start(self, z: float, centre: float | None = None) -> float:
        """Open a hypothesis that has absorbed ``z``; the prior's log density of ``z``."""
        density, level, v00, v11, beta, log_beta = self._prior_step(z, centre)
        n = self.n
        self._level[n] = level
        self._slope[n] = 0.0
        self._v00[n] = v00
        self._v01[n] = v11
        self._v11[n] = v11
        self._alpha[n] = self.alpha0 + 0.5
        self._beta[n] = beta
        self._log_beta[n] = log_beta
        self._ratio[n] = math.log(self.alpha0) - self._ratio0
        self.n = n + 1
        return density

    def _density(self, z: float) -> tuple[np.ndarray, ...]:
        """Log densities of ``z``; the residual, ``1 / (1 + q)`` and the updated rate."""
        n = self.n
        dev = z - self._level[:n]
        v00 = self._v00[:n]
        g = 1.0 / (1.0 + v00)
        log_beta = self._log_beta[:n]
        beta_new = self._beta[:n] + 0.5 * g * (dev * dev)
        log_beta_new = np.log(beta_new)
        density = self._ratio[:n] - _HALF_LOG_2PI
        density -= 0.5 * np.log1p(v00)
        density -= 0.5 * log_beta
        density -= (self._alpha[:n] + 0.5) * (log_beta_new - log_beta)
        return density, dev, g, beta_new, log_beta_new

    def log_predictive(self, z: float) -> np.ndarray:
        """Each hypothesis' log predictive density of ``z`` (nothing absorbed)."""
        return self._density(z)[0]

    def observe(self, z: float) -> np.ndarray:
        """Each hypothesis' log predictive density of ``z``, then ``z`` absorbed."""
        density, dev, g, beta_new, log_beta_new = self._density(z)
        n = self.n
        level, slope = self._level[:n], self._slope[:n]
        v00, v01, v11 = self._v00[:n], self._v01[:n], self._v11[:n]
        # Rank-one update with x = (1, 0): gain V x / (1 + q) = (v00, v01) g.
        gain = v01 * g
        slope += gain * dev
        level += (v00 * g) * dev
        v11 -= gain * v01  # >= v11 / (1 + v00) > 0, by Cauchy-Schwarz
        v00 *= g
        v01 *= g
        # One step on: level += slope, V <- T V T'.
        level += slope
        v00 += 2.0 * v01 + v11
        v01 += v11
        self._beta[:n] = beta_new
        self._log_beta[:n] = log_beta_new
        alpha, ratio = self._alpha[:n], self._ratio[:n]
        np.subtract(np.log(alpha), ratio, out=ratio)
        alpha += 0.5
        return density

    def predictive_mean(self, j: int) -> float:
        """Hypothesis ``j``'s predictive mean for the next value (its level there)."""
        return float(self._level[j])


def logsumexp(a: np.ndarray) -> float:
    """``log(sum(exp(a)))`` without overflow (run-length posteriors are kept as logs)."""
    m = float(a.max())
    return m + math.log(float(np.exp(a - m).sum()))
