"""Online change detection by re-segmentation: the penalised optimal segmentation of what has
been seen, kept up to date event by event, and a change reported once it has stayed in it.

The offline methods that lead TCPD's default table (binary segmentation, PELT) segment the
whole series at once, standardised by its own mean and deviation, minimising the squared
deviations from each segment's mean plus a penalty of ``3 log n`` per change (the MBIC of
R's ``changepoint`` package, which TCPDBench runs). Online, the same optimum can be held for
the values seen so far: at every update this detector has the exact minimiser of

    sum over segments of SSE(segment) / var  +  penalty * log(m) * (segments - 1)

over the last ``m <= window`` values, ``var`` their variance (the standardisation), by
PELT's dynamic programme (Killick, Fearnhead & Eckley 2012; :mod:`.segmentation` is the
offline form) extended by one value per update. An early optimum moves as values arrive, so
a change point is *reported* only when it has been in the optimum for ``stable``
consecutive updates (and is more than ``separation`` from one already reported): the alarm
comes at least ``stable - 1`` updates after the change, and its ``location`` is the change
point, the first index of the new segment. The penalty is higher than the offline MBIC's
3 because the prefix's deviation, early on, is smaller than the whole series' (which counts
the changes to come): at 3, the early optimum splits at every wiggle.

**Cost.** An update extends the programme over the starts PELT keeps (few when the series
changes, up to ``m`` when it does not): one vectorised pass, about 75 microseconds for a
window of 1,000 on a stream that does not change (docs/benchmarks.md, "Detection"). The
penalty moves with ``m`` and ``var``; the programme is computed afresh (``O(m)`` passes)
when it has moved by more than ``rebuild_tolerance`` since the last time, and when the
window is trimmed (every ``window // 4`` values past it): rare once the variance settles,
frequent only in the first few dozen values, when the window is short. Memory is
``O(window)``.

**Trends.** A series that trends is, to segments of constant mean, a staircase: a change
every time the line has moved by a few deviations. With ``trend_penalty`` set, a segment may
instead follow its least-squares line, at ``trend_penalty`` times the penalty per change for
its slope: a segment's cost is the lesser of its squared deviations from its mean and from
its line plus that penalty, so a trend is one segment and a change of slope is a change.
The line's squared deviations come from two more cumulative sums (position times value,
and the closed form of the positions' squares). Splitting a segment can then cost one slope
penalty more than keeping it whole, so PELT keeps every start within that margin of the
optimum (Killick et al.'s constant ``K``): more starts survive, and an update costs about
three times as much.

After an alarm the detector carries on (no restart): its segmentation already begins a new
segment at the location.

>>> import numpy as np
>>> x = np.r_[np.zeros(60), np.full(60, 3.0)] + np.random.default_rng(0).normal(0, 1, 120)
>>> detector = Resegment()
>>> alarms = [a for a in map(detector.update, x) if a is not None]
>>> [(a.index, a.location) for a in alarms]
[(85, 60)]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .protocol import Alarm

__all__ = ["Resegment"]

_TINY_VAR = 1e-300
"""Variance used for a window of equal values (every split then costs only its penalty)."""


def _squares_below(k: np.ndarray | int) -> np.ndarray | float:
    """``0**2 + 1**2 + ... + (k-1)**2``."""
    k = np.asarray(k, np.float64)
    return (k - 1.0) * k * (2.0 * k - 1.0) / 6.0


class Resegment:
    """See the module's description.

    Parameters
    ----------
    penalty
        Multiplier of ``log m`` per change, in units of the window's variance.
    stable
        Consecutive updates a change point must stay in the optimum before it is reported.
    window
        Most recent values segmented (bounds memory and the cost of a rebuild).
    warmup
        Values before the first segmentation.
    separation
        A change point within this many values of one already reported is not reported.
    rebuild_tolerance
        Relative move of ``penalty * log(m) * var`` that makes the programme be computed
        afresh.
    trend_penalty
        ``None``: segments of constant mean. A number: a segment may follow a straight line
        instead, at this multiple of the penalty per change (see "Trends" above).
    """

    name = "resegment"

    def __init__(
        self,
        penalty: float = 8.0,
        stable: int = 20,
        window: int = 1000,
        warmup: int = 5,
        separation: int = 5,
        rebuild_tolerance: float = 0.05,
        trend_penalty: float | None = None,
    ) -> None:
        if not penalty > 0 or not math.isfinite(penalty):
            raise ValueError(f"penalty must be positive, got {penalty}")
        if stable < 1:
            raise ValueError(f"stable must be at least 1, got {stable}")
        if window < 4:
            raise ValueError(f"window must be at least 4, got {window}")
        if not 2 <= warmup <= window:
            raise ValueError(f"warmup must be between 2 and window, got {warmup}")
        if separation < 0:
            raise ValueError(f"separation must be non-negative, got {separation}")
        if not rebuild_tolerance >= 0:
            raise ValueError(f"rebuild_tolerance must be non-negative, got {rebuild_tolerance}")
        self.penalty = float(penalty)
        self.stable = int(stable)
        self.window = int(window)
        self.warmup = int(warmup)
        self.separation = int(separation)
        self.rebuild_tolerance = float(rebuild_tolerance)
        if trend_penalty is not None and not (trend_penalty >= 0 and math.isfinite(trend_penalty)):
            raise ValueError(f"trend_penalty must be non-negative and finite, got {trend_penalty}")
        self.trend_penalty = None if trend_penalty is None else float(trend_penalty)
        self.reset()

    def reset(self) -> None:
        capacity = self.window + self.window // 4 + 2
        self.n = 0
        """Values seen (the next value's index)."""
        self.base = 0
        """Index of the window's first value."""
        self.m = 0
        """Values in the window."""
        self.centre = 0.0
        """Subtracted from every value before summing (sums of squares stay small)."""
        self.s1 = np.zeros(capacity)
        self.s2 = np.zeros(capacity)
        self.s3 = np.zeros(capacity if self.trend_penalty is not None else 0)
        """Cumulative sums of position times value (the slope's cross term), kept only when
        segments may trend (so a stored detector without slopes does not carry them)."""
        self.best = np.zeros(capacity)
        """The programme's optimal cost of the window's first ``t`` values, by ``t``."""
        self.last = np.zeros(capacity, np.int64)
        """Where the last segment of that optimum starts, by ``t``."""
        self.starts = np.zeros(0, np.int64)
        """The starts PELT has not pruned."""
        self.beta = 0.0
        """The penalty per change the programme was computed with."""
        self.counts: dict[int, int] = {}
        """Change points of the current optimum: consecutive updates each has been in it."""
        self.reported: list[int] = []
        """Locations reported that are still in (or just before) the window."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "trend_penalty" not in state:  # stored before segments could trend (2026-12-08)
            self.trend_penalty = None
            self.s3 = np.zeros(0)

    @property
    def trend_beta(self) -> float:
        """The penalty for a segment's slope the programme was computed with."""
        return (self.trend_penalty or 0.0) * self.beta

    # -- the programme ----------------------------------------------------------------------
    def _beta(self) -> float:
        m = self.m
        s1, s2 = self.s1[m], self.s2[m]
        var = max((s2 - s1 * s1 / m) / (m - 1), 0.0)
        return self.penalty * math.log(m) * max(var, _TINY_VAR)

    def _extend(self, t: int) -> None:
        """Add position ``t`` (the window's first ``t`` values) to the programme."""
        starts = self.starts
        d1 = self.s1[t] - self.s1[starts]
        n = t - starts
        sse = self.s2[t] - self.s2[starts] - d1 * d1 / n
        slack = 0.0
        if self.trend_penalty is not None:
            slack = self.trend_beta
            sse = np.minimum(sse, self._trend_sse(starts, t, n, d1, sse) + slack)
        total = self.best[starts] + sse
        k = int(np.argmin(total))
        self.best[t] = total[k] + self.beta
        self.last[t] = starts[k]
        # PELT's pruning: a start whose cost to t exceeds the optimum at t by more than K is
        # beaten at every later end by a split at t, where K bounds what splitting a segment
        # can add to its cost: 0 for squared deviations from the mean, and the slope's
        # penalty once a segment may carry a slope (each half may then pay it again).
        self.starts = np.append(starts[total <= self.best[t] + slack], t)

    def _trend_sse(
        self, starts: np.ndarray, t: int, n: np.ndarray, d1: np.ndarray, sse: np.ndarray
    ) -> np.ndarray:
        """Squared deviations from each segment's least-squares line (positions ``s..t-1``)."""
        si = (starts + t - 1) * n / 2.0
        sii = _squares_below(t) - _squares_below(starts)
        cii = sii - si * si / n
        cix = self.s3[t] - self.s3[starts] - si * d1 / n
        with np.errstate(divide="ignore", invalid="ignore"):
            fit = np.where(cii > 0, sse - cix * cix / cii, 0.0)
        return np.maximum(fit, 0.0)

    def _rebuild(self) -> None:
        """Trim the window to its last ``window`` values and compute the programme afresh."""
        m = self.m
        if m > self.window:
            drop = m - self.window
            values = np.diff(self.s1[: m + 1])[drop:] + self.centre
            self.base += drop
            self.m = m = self.window
            self.centre = float(values.mean())
            centred = values - self.centre
            self.s1[1 : m + 1] = np.cumsum(centred)
            self.s2[1 : m + 1] = np.cumsum(centred * centred)
            if self.trend_penalty is not None:
                self.s3[1 : m + 1] = np.cumsum(np.arange(m) * centred)
            self.reported = [r for r in self.reported if r >= self.base - self.separation]
        self.beta = self._beta()
        self.best[0] = -self.beta  # the first segment pays no penalty
        self.starts = np.zeros(1, np.int64)
        for t in range(1, m + 1):
            self._extend(t)

    def change_points(self) -> list[int]:
        """The change points of the current optimum (first indices of new segments)."""
        out, t = [], self.m
        while t > 0:
            t = int(self.last[t])
            if t > 0:
                out.append(self.base + t)
        return out[::-1]

    # -- the protocol -----------------------------------------------------------------------
    def update(self, x: float) -> Alarm | None:
        index = self.n
        self.n += 1
        if self.m == 0:
            self.centre = float(x)
        v = float(x) - self.centre
        m = self.m = self.m + 1
        self.s1[m] = self.s1[m - 1] + v
        self.s2[m] = self.s2[m - 1] + v * v
        if self.trend_penalty is not None:
            self.s3[m] = self.s3[m - 1] + (m - 1) * v
        if self.n < self.warmup:
            return None
        if (
            self.n == self.warmup
            or m >= self.window + self.window // 4
            or abs(self._beta() - self.beta) > self.rebuild_tolerance * self.beta
        ):
            self._rebuild()
        else:
            self._extend(m)
        points = self.change_points()
        self.counts = counts = {c: self.counts.get(c, 0) + 1 for c in points}
        for c in points:  # oldest first: one alarm per update, the rest wait their turn
            if counts[c] >= self.stable and all(
                abs(c - r) > self.separation for r in self.reported
            ):
                self.reported.append(c)
                return Alarm(index=index, location=c, score=float(counts[c]))
        return None
