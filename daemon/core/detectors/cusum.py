"""Two-sided CUSUM for a change in mean, its threshold set by a false-alarm rate.

Page's cumulative sum (Page 1954, "Continuous inspection schemes", Biometrika 41) on the
standardised input ``z = (x - mu) / sigma`` runs two one-sided statistics,

    S+ = max(0, S+ + z - k)        (an upward shift)
    S- = max(0, S- - z - k)        (a downward shift)

and raises an :class:`~.protocol.Alarm` when either exceeds the threshold ``h``. The
reference value ``k`` is half the shift, in standard deviations, that the scheme is tuned
for: ``k = 0.5`` (the default) is optimal for a 1-sd shift.

**Threshold.** The user states ``false_alarms_per_10k``, the expected number of false alarms
per 10,000 in-control events, so the two-sided in-control average run length is
``ARL0 = 10_000 / false_alarms_per_10k``. The two sides alarm independently enough that
``1/ARL0 = 1/ARL+ + 1/ARL-``, and by symmetry each side needs ``2 * ARL0``. ``h`` solves
Siegmund's approximation for the one-sided Gaussian CUSUM (Siegmund 1985, *Sequential
Analysis*, Springer; :func:`arl_of`),

    ARL(h, k) ~= (exp(-2 D b) + 2 D b - 1) / (2 D**2),   D = shift - k,  b = h + 1.166,

(``b = h + 2 * 0.583``, the correction for the overshoot of a Gaussian random walk; ``b**2``
when ``D = 0``) by bisection (:func:`threshold_for_arl`). It is accurate to a few per cent:
for ``k = 0.5, h = 4`` it gives 338 against the exact 336. The default, one false alarm per
10,000 events, gives ``h = 8.05`` and, for a 1-sd shift, an expected delay of 16.4 events
(``arl_of(h, 0.5, shift=1.0)``).

**Standardisation (self-starting).** Each value is standardised by the mean and standard
deviation of the values before it since the (re)start, as in Hawkins's self-starting CUSUM
(Hawkins 1987, "Self-starting CUSUM charts for location and scale", The Statistician 36;
Hawkins & Olwell 1998, *Cumulative Sum Charts*): with ``n`` earlier values, mean ``m`` and
standard deviation ``s``, ``T = (x - m) / (s * sqrt(1 + 1/n))`` is Student-t with ``n - 1``
degrees of freedom in control, and ``z`` is its normal score (Wallace 1959, Ann. Math.
Statist. 30; within 0.003 of the exact score from ``n = 30``). For Gaussian inputs the
``z`` are then independent N(0, 1) in control (up to that approximation), so the
calibration above holds from the first monitored value. Nothing is raised during the first
``warmup`` values after the start and after every alarm; a warm-up whose values are all
equal is extended until they are not (a scale of zero cannot standardise). The scheme is
free of the input's scale and offset.

The estimates keep learning after the warm-up rather than freezing on its ``warmup``
values, whose errors the exponential ARL magnifies: at the default ``h``, a mean off by 0.18
sd (one standard error of a 30-value mean) cuts the two-sided in-control ARL from 10,000 to
~1,700. Simulated, frozen 30-value estimates gave ~5 false alarms per 10,000 events over the
first 2,000 after a (re)start at the default rate of 1, the self-starting form ~1. The
price: a change's own values enter the estimates too, so a change soon after a restart is
found later than :func:`arl_of` says, and a shift must be caught before it is absorbed.

**After an alarm** the detector re-warms from the alarm: the estimates restart from the next
values, not from those since ``location``. After a false alarm those values are the ones
that drove the statistic over ``h``, so estimates from them would start the next run
off-centre and make a second false alarm likely; fresh values keep in-control runs
independent, as the calibration assumes. The ``warmup`` events after each alarm, which
cannot alarm, lower the long-run false-alarm rate by a factor ``ARL0 / (ARL0 + warmup)``,
negligible at the default rate. The daemon still takes the events since ``location`` as the
new regime's first examples.

**Location.** The alarm's ``location`` is the index after the last update at which the
alarming side's statistic was 0: the start point maximising the log-likelihood ratio of a
shift of ``2k`` (the CUSUM's arg max). ``score`` is that side's statistic at the alarm, in
standard deviations (greater than ``h``). Non-finite values are counted (the index advances)
but otherwise ignored.

Parameters: ``k`` (reference value, sd), ``false_alarms_per_10k`` (target rate),
``warmup`` (values after the start and after every alarm before any alarm, at least 3).

A 1.5-sd rise at index 500 of a seeded Gaussian stream:

>>> import numpy as np
>>> x = np.random.default_rng(7).normal(10.0, 2.0, 1000)
>>> x[500:] += 1.5 * 2.0
>>> detector = Cusum()
>>> round(detector.h, 2)
8.05
>>> alarms = [a for a in map(detector.update, x) if a is not None]
>>> [(a.index, a.location) for a in alarms]
[(510, 500)]
>>> round(threshold_for_arl(arl_of(4.0, 0.5), 0.5), 6), round(arl_of(4.0, 0.5))
(4.0, 338)
"""

from __future__ import annotations

import math

from .protocol import Alarm
from .standardise import SelfStarting, check_warmup

__all__ = ["OVERSHOOT", "Cusum", "arl_of", "threshold_for_arl", "two_sided_threshold"]

OVERSHOOT = 1.166
"""Siegmund's correction ``b = h + OVERSHOOT``: twice -zeta(1/2)/sqrt(2 pi) = 0.583, the
expected overshoot of a Gaussian random walk over a boundary."""


def arl_of(h: float, k: float, shift: float = 0.0) -> float:
    """Siegmund's approximate average run length of the one-sided Gaussian CUSUM.

    ``h`` is the threshold and ``k`` the reference value, both in standard deviations of the
    input; ``shift`` is the input's mean, also in standard deviations (0 in control, giving
    the in-control ARL; the shift's size for the expected detection delay from a zero
    statistic). ``math.inf`` when the run length overflows a float.

    >>> round(arl_of(4.0, 0.5), 1), round(arl_of(4.0, 0.5, shift=1.0), 2)
    (338.1, 8.34)
    """
    if not (math.isfinite(h) and h >= 0.0 and math.isfinite(k) and math.isfinite(shift)):
        raise ValueError(f"h must be >= 0 and k, shift finite, got h={h!r}, k={k!r}")
    d = shift - k
    b = h + OVERSHOOT
    x = 2.0 * d * b
    if abs(x) < 1e-4:  # D ~ 0: the series of exp(-x) + x - 1 avoids the cancellation
        return b * b * (1.0 - x / 3.0 + x * x / 12.0)
    if -x > 700.0:
        return math.inf
    return (math.exp(-x) + x - 1.0) / (2.0 * d * d)


def threshold_for_arl(arl: float, k: float) -> float:
    """The threshold ``h`` at which the one-sided CUSUM's in-control :func:`arl_of` is ``arl``.

    Solved by bisection (``arl_of`` increases with ``h``). ``arl`` must exceed the run
    length at ``h = 0``; ``k >= 0``.

    >>> round(threshold_for_arl(1000.0, 0.5), 3)
    5.063
    """
    if not (math.isfinite(k) and k >= 0.0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    if not (arl > arl_of(0.0, k) and math.isfinite(arl)):
        raise ValueError(
            f"arl must be finite and above {arl_of(0.0, k):.3g} (the run length at h = 0 "
            f"for k = {k}), got {arl!r}"
        )
    lo, hi = 0.0, 1.0
    while arl_of(hi, k) < arl:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if arl_of(mid, k) < arl:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


def two_sided_threshold(false_alarms_per_10k: float, k: float) -> float:
    """``h`` for a two-sided scheme with ``false_alarms_per_10k`` expected false alarms per
    10,000 in-control events: each side's ARL is ``2 * 10_000 / false_alarms_per_10k``.

    >>> round(two_sided_threshold(20.0, 0.5), 3)  # ARL0 500, each side 1000
    5.063
    """
    if not (math.isfinite(false_alarms_per_10k) and false_alarms_per_10k > 0.0):
        raise ValueError(
            f"false_alarms_per_10k must be a positive number, got {false_alarms_per_10k!r}"
        )
    return threshold_for_arl(2.0 * 10_000.0 / false_alarms_per_10k, k)


class Cusum:
    """Two-sided self-starting CUSUM for a change in mean, re-warming after each alarm.

    Parameters
    ----------
    k
        Reference value in standard deviations: half the shift the scheme is tuned for.
    false_alarms_per_10k
        Expected false alarms per 10,000 in-control events; sets :attr:`h`.
    warmup
        Values after the start and after every alarm before any alarm (at least 3).
    """

    __slots__ = (
        "_index",
        "_neg",
        "_neg_zero",
        "_pos",
        "_pos_zero",
        "_scale",
        "false_alarms_per_10k",
        "h",
        "k",
        "warmup",
    )

    name = "cusum"

    def __init__(self, k: float = 0.5, false_alarms_per_10k: float = 1.0, warmup: int = 30) -> None:
        self.h = two_sided_threshold(false_alarms_per_10k, k)
        """The threshold on either statistic, in standard deviations."""
        self.k = float(k)
        self.false_alarms_per_10k = float(false_alarms_per_10k)
        self.warmup = check_warmup(warmup)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (the next update is index 0 again)."""
        self._index = 0
        self._restart()

    def _restart(self) -> None:
        self._scale = SelfStarting(self.warmup)
        self._pos = 0.0
        self._neg = 0.0
        self._pos_zero = -1  # the last update at which each statistic was 0
        self._neg_zero = -1

    def update(self, x: float) -> Alarm | None:
        """Take the next value; an :class:`~.protocol.Alarm` when a change is detected."""
        i = self._index
        self._index = i + 1
        x = float(x)
        if not math.isfinite(x):
            return None
        z = self._scale.score(x)
        if z is None:  # warming up: the statistics start at 0 after the last warm-up value
            self._pos_zero = self._neg_zero = i
            return None
        pos = self._pos + z - self.k
        if pos <= 0.0:
            pos = 0.0
            self._pos_zero = i
        neg = self._neg - z - self.k
        if neg <= 0.0:
            neg = 0.0
            self._neg_zero = i
        if pos > self.h or neg > self.h:
            if pos >= neg:
                alarm = Alarm(i, self._pos_zero + 1, pos)
            else:
                alarm = Alarm(i, self._neg_zero + 1, neg)
            self._restart()
            return alarm
        self._pos, self._neg = pos, neg
        return None

    def __repr__(self) -> str:
        return (
            f"Cusum(k={self.k!r}, false_alarms_per_10k={self.false_alarms_per_10k!r}, "
            f"warmup={self.warmup!r})"
        )
