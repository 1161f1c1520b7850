"""Confirmation of an online alarm by an offline segmentation of the window before it.

An online detector decides from the values up to its alarm, with a threshold set for a
false-alarm rate; an offline segmentation of those same values, with a penalty per change,
can look again: :class:`Confirmation` segments the recent window by PELT
(:mod:`.segmentation`) and either *relocates* the alarm to the segmentation's change point
nearest the detector's estimated location, or *retracts* it when the segmentation finds no
change in the window at all. It sees nothing after the alarm, so the pair is still online.

The window is standardised by its median and by a scale from its first differences
(``MAD(diff) / (0.6745 sqrt 2)``), which a change of level hardly moves, so one penalty
fits any units; the cost is ``"meanvar"`` (a change of mean and/or variance) unless told.
The penalty is ``penalty * log(n)`` for a window of ``n`` values; the default 3 is the BIC's
count for a change of mean and variance (two parameters and a location), set from that
argument, not fitted to any benchmark.

:class:`Confirmed` puts the two together behind the detector protocol (the benchmark's way
of measuring it); the daemon instead confirms a shift off its event loop, with the window
its detection kept (:mod:`adaptd.daemon.core.detection`).

>>> import numpy as np
>>> from adaptd.daemon.core.detectors.cusum import Cusum
>>> x = np.random.default_rng(3).normal(0.0, 1.0, 400)
>>> x[250:] += 2.0
>>> detector = Confirmed(Cusum(false_alarms_per_10k=100.0))
>>> [a.location for a in map(detector.update, x) if a is not None]
[250]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .protocol import Alarm, ChangeDetector
from .segmentation import COSTS, pelt

__all__ = ["Check", "Confirmation", "Confirmed", "run_checks"]

_MAD_TO_SD = 1.0 / (0.6744897501960817 * np.sqrt(2.0))
"""From the median absolute first difference to the values' standard deviation."""


@dataclass(frozen=True)
class Confirmation:
    """How an alarm is checked: the last ``window`` values, PELT with this ``cost`` and a
    penalty of ``penalty * log(n)``, segments of at least ``min_size`` values (the variance
    of two values can be as small as their rounding: a segment of two would be a change
    found in any noise)."""

    window: int = 200
    penalty: float = 3.0
    cost: str = "meanvar"
    min_size: int = 5

    def __post_init__(self) -> None:
        if self.window < 4:
            raise ValueError(f"window must be at least 4, got {self.window}")
        if not self.penalty > 0:
            raise ValueError(f"penalty must be positive, got {self.penalty}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {self.cost!r}")

    def check(self, values: np.ndarray, start: int, location: int) -> int | None:
        """The confirmed location of a change estimated at ``location``, given the window
        ``values`` whose first value has index ``start``; None to retract it."""
        x = np.asarray(values, np.float64)
        n = len(x)
        if n < 2 * self.min_size:
            return location  # too little to judge: the detector's word stands
        scale = float(np.median(np.abs(np.diff(x)))) * _MAD_TO_SD
        if not scale > 0.0:
            scale = float(np.std(x)) or 1.0
        z = (x - float(np.median(x))) / scale
        changes = pelt(z, self.penalty * float(np.log(n)), self.cost, self.min_size)
        if not changes:
            return None
        # The nearest to the detector's estimate; the later on a tie (the newer change).
        return start + min(changes, key=lambda c: (abs(start + c - location), -c))


class Check:
    """One alarm waiting for its confirmation, computed by :meth:`run` wherever the caller
    likes (it reads only its own fields: the daemon runs it off its event loop).

    >>> check = Check(Confirmation(), np.r_[np.zeros(20), np.ones(20)], 100, 118)
    >>> check.run()
    >>> check.done, check.result
    (True, 120)
    """

    __slots__ = ("confirmation", "done", "location", "result", "start", "values")

    def __init__(
        self, confirmation: Confirmation, values: np.ndarray, start: int, location: int
    ) -> None:
        self.confirmation = confirmation
        self.values = values
        self.start = start
        self.location = location
        self.done = False
        self.result: int | None = None
        """The confirmed location, or None: retracted (once ``done``)."""

    def run(self) -> None:
        if not self.done:
            self.result = self.confirmation.check(self.values, self.start, self.location)
            self.done = True


def run_checks(checks: list[Check]) -> None:
    """Run every check (one call, for an executor)."""
    for check in checks:
        check.run()


class Confirmed:
    """A detector whose alarms are confirmed (relocated or retracted) by a
    :class:`Confirmation`, once ``after`` values have followed the detector's estimated
    location (an offline segmentation cannot see a change it has two values of).

    The window judged runs from the last confirmed change (or ``window`` values back, if
    nearer) to the value that completes ``after``; an alarm raised while one is being held
    is the same change, seen again. A confirmed alarm's ``index`` is that of the value that
    completed it. ``retracted`` counts the alarms withheld.
    """

    def __init__(
        self,
        detector: ChangeDetector,
        confirmation: Confirmation | None = None,
        after: int = 10,
    ) -> None:
        if after < 1:
            raise ValueError(f"after must be at least 1, got {after}")
        self.detector = detector
        self.confirmation = confirmation or Confirmation()
        self.after = after
        self.name = f"{detector.name}+pelt"
        self.reset()

    def reset(self) -> None:
        self.detector.reset()
        self.retracted = 0
        self._recent: deque[float] = deque(maxlen=self.confirmation.window)
        self._index = 0
        self._held: Alarm | None = None

    def update(self, x: float) -> Alarm | None:
        recent = self._recent
        recent.append(x)
        index = self._index
        self._index = index + 1
        alarm = self.detector.update(x)
        held = self._held
        if held is None:
            if alarm is None:
                return None
            held = self._held = alarm
        if index - held.location + 1 < self.after:
            return None
        self._held = None
        start = index + 1 - len(recent)
        location = self.confirmation.check(np.fromiter(recent, np.float64), start, held.location)
        if location is None:
            self.retracted += 1
            return None
        for _ in range(max(0, location - start)):
            recent.popleft()  # the next change is looked for after this one
        return Alarm(index, location, held.score)
