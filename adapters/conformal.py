"""Adaptive conformal inference for value at risk: tail probabilities that keep a VaR's
violation rate at its nominal level whatever the forecast's misspecification.

Gibbs and Candès (2021, "Adaptive conformal inference under distribution shift") move the
probability at which a quantile is taken after every outcome: down after a violation, up
after none,

    a_(t+1) = a_t + gamma * (a - 1{violation at t}),

so that ``a_t = a + gamma * (a * m_t - v_t)`` after ``m_t`` outcomes with ``v_t``
violations. As ``a_t`` stays bounded, ``|v_t / m_t - a| <= (1 + gamma) / (gamma * m_t)``:
the long-run violation rate is ``a`` whether the variance forecast is biased, the tail
fatter than assumed, or both drift. Their experiments use ``gamma = 0.005``.

Here the probability used for a VaR is ``a_t`` clipped to ``[LOW, HIGH]`` (a quantile at 0
would be an infinite VaR); the recursion itself is not clipped. The bound above needs a VaR
that cannot be broken once ``a_t <= 0``; clipped, it holds as long as the VaR at ``LOW``
(4.75 standard deviations of a normal) is broken rarely, i.e. unless the forecast is far
too low for its tail. Outcomes may arrive late (the
sum of the next H returns is known H events after its forecast): each counts when it arrives.

numpy and scipy only.

>>> levels = AdaptiveLevels((0.05,), gamma=0.01)
>>> levels.update((True,))  # a violation: a smaller probability, a deeper VaR
>>> round(levels.current()[0], 4)  # 0.05 + 0.01 * (0.05 - 1)
0.0405
>>> for _ in range(19): levels.update((False,))
>>> round(levels.current()[0], 4)  # one violation in 20 events is the nominal rate: back at a
0.05
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .checks import positive_int, tail_levels
from .forecasting import normal_var_es, t_var_es

__all__ = ["HIGH", "LOW", "AdaptiveLevels", "var_path"]

LOW = 1e-6
"""The least tail probability a VaR is taken at."""
HIGH = 0.49
"""The greatest (at 0.5 the VaR of a zero-mean return is 0)."""


class AdaptiveLevels:
    """One adaptive tail probability per nominal level (Gibbs and Candès 2021)."""

    __slots__ = ("gamma", "levels", "raw")

    def __init__(self, levels: Sequence[float], gamma: float) -> None:
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
        self.levels = tail_levels("levels", levels)
        self.gamma = float(gamma)
        self.raw = self.levels
        """The unclipped ``a_t`` per level."""

    def current(self) -> tuple[float, ...]:
        """The probabilities at which the next VaRs are taken: ``a_t`` clipped."""
        return tuple(min(max(a, LOW), HIGH) for a in self.raw)

    def update(self, violated: Sequence[bool]) -> None:
        """One outcome: per level, whether the loss went beyond its VaR."""
        g = self.gamma
        self.raw = tuple(
            a + g * (level - float(v))
            for a, level, v in zip(self.raw, self.levels, violated, strict=True)
        )


def var_path(
    outcome: np.ndarray,
    variance: np.ndarray,
    levels: Sequence[float],
    *,
    dof: float | None = None,
    gamma: float | None = None,
    horizon: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """VaR and expected shortfall (positive losses, ``(n, levels)``) of a zero-mean return
    with ``variance[t]`` at each event, from a normal or a Student t with ``dof`` scaled to
    the variance; with ``gamma``, at the adaptive probabilities of :class:`AdaptiveLevels`.

    ``outcome[t]`` is the return the VaR of event t is about (the sum of the next
    ``horizon`` log returns), known at event ``t + horizon``; NaN where unknown. Events
    whose variance is NaN have no VaR (NaN) and count for nothing. ``violations = outcome <
    -var`` are then the hits a Kupiec test counts.

    >>> rng = np.random.default_rng(0)
    >>> r = rng.standard_t(3, 20_000) * 0.01  # fat tails, forecast as normal
    >>> v = np.full(20_000, 1e-4 * 3)  # the right variance
    >>> fixed, _ = var_path(r, v, (0.01,))
    >>> adaptive, _ = var_path(r, v, (0.01,), gamma=0.005)
    >>> round(float(np.mean(r < -fixed[:, 0])), 3), round(float(np.mean(r < -adaptive[:, 0])), 3)
    (0.015, 0.01)
    """
    outcome = np.asarray(outcome, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    n, k = len(variance), len(levels)
    var, es = np.full((n, k), np.nan), np.full((n, k), np.nan)
    if gamma is None:
        ok = np.isfinite(variance)
        var[ok], es[ok] = _tail(variance[ok, None], np.asarray(levels, dtype=np.float64), dof)
        return var, es
    # Sequential: each probability depends on the violations already known.
    positive_int("horizon", horizon)
    adaptive = AdaptiveLevels(levels, gamma)
    for t in range(n):
        j = t - horizon
        if j >= 0 and np.isfinite(var[j, 0]) and np.isfinite(outcome[j]):
            adaptive.update(tuple(outcome[j] < -var[j]))
        if np.isfinite(variance[t]):
            var[t], es[t] = _tail(variance[t], np.asarray(adaptive.current()), dof)
    return var, es


def _tail(
    variance: np.ndarray | float, a: np.ndarray, dof: float | None
) -> tuple[np.ndarray, np.ndarray]:
    if dof is None:
        return normal_var_es(variance, a)
    return t_var_es(variance, a, dof)
