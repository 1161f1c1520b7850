"""Page-Hinkley test for a change in mean, its threshold set by a false-alarm rate.

The cumulative-deviation form of Page's test (Page 1954, "Continuous inspection schemes",
Biometrika 41; Hinkley 1971, "Inference about the change-point from cumulative sum tests",
Biometrika 58), on standardised deviations from the running mean:

    d_i = (x_i - mean_i) / sd_i                 (mean_i, sd_i: of the values since the
                                                 restart, x_i included)
    m_t = sum_{i<=t} (d_i - delta)              alarm (up) when m_t - min_{s<=t} m_s > threshold
    p_t = sum_{i<=t} (d_i + delta)              alarm (down) when max_{s<=t} p_s - p_t > threshold

with the sums, their extremes and the running moments starting after the warm-up's values
(the moments include them). ``delta`` is the reference value in standard deviations (0.5,
half the 1-sd shift it is tuned for), and the alarm's ``location`` is the index after the
arg min of ``m`` (the arg max of ``p`` downwards): the last update at which the statistic
was 0, as for :class:`~.cusum.Cusum`. ``score`` is ``m_t - min m`` (or ``max p - p_t``) at
the alarm, in standard deviations.

**Threshold: the CUSUM's calibration, reused.** ``m_t - min m`` obeys the CUSUM recursion
``S = max(0, S + d - delta)``: Page-Hinkley with ``delta = k`` on standardised data is a
CUSUM whose in-control mean is the running mean. In control the deviations ``d_i`` are
uncorrelated with variance ``(n - 1) / n`` (``n`` values since the restart), nearly 1 from
the warm-up's 30 on, so the threshold is the CUSUM's
(:func:`~.cusum.two_sided_threshold`: Siegmund's approximation, each side at twice
``10_000 / false_alarms_per_10k``). This is an approximation, not a derivation: the
deviations are a little lighter-tailed than Gaussian and only nearly independent; the tests
check the false-alarm rate it gives by simulation (within a few per cent, below the target
rather than above). Because the mean and scale are re-estimated with every value, the test
is free of the input's scale and offset and its calibration does not hang on the warm-up's
estimates (see :mod:`.cusum` on why frozen estimates would not do); the price is that a
change's own values pull the running mean towards them.

Nothing is raised during the first ``warmup`` values after the start and after every alarm
(a warm-up whose values are all equal is extended until they are not). After an alarm the
test re-warms from the alarm, as :class:`~.cusum.Cusum` does and for the same reason.
Non-finite values are counted (the index advances) but otherwise ignored.

Parameters: ``delta`` (reference value, sd), ``false_alarms_per_10k`` (target rate),
``warmup`` (values before any alarm, at least 3).

A 1.5-sd rise at index 500 of a seeded Gaussian stream:

>>> import numpy as np
>>> x = np.random.default_rng(7).normal(10.0, 2.0, 1000)
>>> x[500:] += 1.5 * 2.0
>>> detector = PageHinkley()
>>> round(detector.threshold, 2)
8.05
>>> [(a.index, a.location) for a in map(detector.update, x) if a is not None]
[(510, 500)]
"""

from __future__ import annotations

import math

from .cusum import two_sided_threshold
from .protocol import Alarm
from .standardise import check_warmup

__all__ = ["PageHinkley"]


class PageHinkley:
    """Two-sided Page-Hinkley test on standardised running deviations, re-warming after
    each alarm.

    Parameters
    ----------
    delta
        Reference value in standard deviations: half the shift the test is tuned for.
    false_alarms_per_10k
        Expected false alarms per 10,000 in-control events; sets :attr:`threshold`.
    warmup
        Values after the start and after every alarm before any alarm (at least 3).
    """

    __slots__ = (
        "_down",
        "_down_arg",
        "_down_max",
        "_index",
        "_m2",
        "_mean",
        "_n",
        "_up",
        "_up_arg",
        "_up_min",
        "delta",
        "false_alarms_per_10k",
        "threshold",
        "warmup",
    )

    name = "page_hinkley"

    def __init__(
        self, delta: float = 0.5, false_alarms_per_10k: float = 1.0, warmup: int = 30
    ) -> None:
        if not (math.isfinite(delta) and delta >= 0.0):
            raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
        self.threshold = two_sided_threshold(false_alarms_per_10k, delta)
        """lambda: the threshold on either statistic, in standard deviations."""
        self.delta = float(delta)
        self.false_alarms_per_10k = float(false_alarms_per_10k)
        self.warmup = check_warmup(warmup)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (the next update is index 0 again)."""
        self._index = 0
        self._restart()

    def _restart(self) -> None:
        self._n = 0  # Welford's count, mean and sum of squared deviations since the restart
        self._mean = 0.0
        self._m2 = 0.0
        self._up = 0.0  # m_t, its minimum so far and where it was reached
        self._up_min = 0.0
        self._up_arg = -1
        self._down = 0.0  # p_t, its maximum so far and where it was reached
        self._down_max = 0.0
        self._down_arg = -1

    def update(self, x: float) -> Alarm | None:
        """Take the next value; an :class:`~.protocol.Alarm` when a change is detected."""
        i = self._index
        self._index = i + 1
        x = float(x)
        if not math.isfinite(x):
            return None
        monitoring = self._n >= self.warmup and self._m2 > 0.0
        n = self._n + 1
        delta = x - self._mean
        self._mean += delta / n
        self._m2 += delta * (x - self._mean)
        self._n = n
        if not monitoring:  # the sums start at 0 after the last warm-up value
            self._up_arg = self._down_arg = i
            return None
        d = (x - self._mean) / math.sqrt(self._m2 / (n - 1))
        up = self._up + d - self.delta
        if up <= self._up_min:
            self._up_min = up
            self._up_arg = i
        down = self._down + d + self.delta
        if down >= self._down_max:
            self._down_max = down
            self._down_arg = i
        self._up, self._down = up, down
        rise, fall = up - self._up_min, self._down_max - down
        if rise > self.threshold or fall > self.threshold:
            if rise >= fall:
                alarm = Alarm(i, self._up_arg + 1, rise)
            else:
                alarm = Alarm(i, self._down_arg + 1, fall)
            self._restart()
            return alarm
        return None

    def __repr__(self) -> str:
        return (
            f"PageHinkley(delta={self.delta!r}, "
            f"false_alarms_per_10k={self.false_alarms_per_10k!r}, warmup={self.warmup!r})"
        )
