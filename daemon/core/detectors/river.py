"""river's drift detectors behind the protocol, kept as they are.

Neither gives a usable location, so an alarm is its own ``location``. ADWIN (Bifet &
Gavaldà 2007) drops the older part of its window when the two parts' means differ, but only
as much as it must, at the edges of buckets that grow exponentially with age: the window it
keeps reached 150 events before a volatility change in tests, further than its alarm came
after it (its width is in the shift's ``stats``). Page-Hinkley (river's, with ``threshold``
and ``delta`` in input units) keeps no estimate of where the change began. The daemon's
inputs are unit-scale, which is why river's thresholds fit them.

>>> from river.drift import ADWIN
>>> import random
>>> rng, detector = random.Random(1), RiverDetector("adwin", ADWIN())
>>> alarms = [a for i in range(2000) if (a := detector.update(rng.gauss(0 if i < 1000 else 2, 1)))]
>>> [(a.index, a.location) for a in alarms]
[(1023, 1023)]
"""

from __future__ import annotations

from typing import Any

from river import drift
from river.drift import ADWIN

from .protocol import Alarm, ChangeDetector

__all__ = ["AcyclicPageHinkley", "RiverDetector", "alarm_estimates"]


class AcyclicPageHinkley(drift.PageHinkley):
    """river's Page-Hinkley, without its reference cycle.

    river keeps the test it applies as a bound method on the detector itself
    (``self._test_drift = self._test_both``): a cycle per detector, which only the cyclic
    collector frees, so every stream's state stayed in its sight and a restart that restored
    tens of thousands of streams paid full collections over all of them, on the event loop.
    Here the test is a method of the class; the behaviour is river's.

    >>> detector = AcyclicPageHinkley(mode="up", threshold=5.0)
    >>> "_test_drift" in vars(detector), detector._test_drift(6.0, 0.0)
    (False, True)
    """

    def _reset(self) -> None:
        super()._reset()
        self.__dict__.pop("_test_drift", None)

    def _test_drift(self, test_increase: float, test_decrease: float) -> bool:  # type: ignore[override]
        if self.mode == self._MODE_UP:
            return test_increase > self.threshold
        if self.mode == self._MODE_DOWN:
            return test_decrease > self.threshold
        return test_increase > self.threshold or test_decrease > self.threshold


def _acyclic(detector: Any) -> Any:
    """A river Page-Hinkley restored from a snapshot written before
    :class:`AcyclicPageHinkley`, made one (the others as they are): its bound method is
    neither collected without cycles nor stored in today's format."""
    if type(detector) is drift.PageHinkley:
        detector.__class__ = AcyclicPageHinkley
        detector.__dict__.pop("_test_drift", None)
    return detector


class RiverDetector:
    """A river drift detector (anything with ``update`` and ``drift_detected``)."""

    __slots__ = ("_index", "_initial", "detector", "name")

    def __init__(self, name: str, detector: Any) -> None:
        self.name = name
        # A Page-Hinkley of a snapshot from before detectors were wrapped is river's own.
        self.detector = detector = _acyclic(detector)
        self._initial = detector.clone()
        self._index = 0

    def update(self, x: float) -> Alarm | None:
        self._index += 1
        detector = self.detector
        detector.update(x)
        if not detector.drift_detected:
            return None
        i = self._index - 1
        return Alarm(i, i, 1.0)

    def reset(self) -> None:
        self.detector = self._initial.clone()
        self._index = 0

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        for name, value in state[1].items():
            setattr(self, name, _acyclic(value) if name in ("detector", "_initial") else value)

    def estimates(self, prefix: str) -> dict[str, float]:
        """What the detector knows after firing, for the shift's ``stats``: ADWIN's mean over
        the window it kept (the new regime), Page-Hinkley's running mean since its last
        reset (mostly the old regime)."""
        detector = self.detector
        if isinstance(detector, ADWIN):
            return {
                f"{prefix}.mean_after": float(detector.estimation),
                f"{prefix}.width": float(detector.width),
            }
        mean = getattr(detector, "_x_mean", None)  # river keeps no public accessor
        return {} if mean is None else {f"{prefix}.mean_before": float(mean.get())}


def alarm_estimates(name: str, alarm: Alarm, detector: ChangeDetector | None) -> dict[str, float]:
    """What the detector that fired knows (river's own estimates, or adaptd's score)."""
    if isinstance(detector, RiverDetector):
        return detector.estimates(name)
    if detector is None:
        return {}
    return {f"{name}.score": float(alarm.score)}
