"""river's detectors behind the protocol: Page-Hinkley without its reference cycle, the same
alarms as river's own, and snapshots written with river's class read into the acyclic one."""

from __future__ import annotations

import gc
import pickle
import random

from river import drift

from adaptd.daemon.core import state_format
from adaptd.daemon.core.detectors.river import AcyclicPageHinkley, RiverDetector


def _series(seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0 if i < 600 else 1.5, 1.0) for i in range(1500)]


def _alarms(detector: RiverDetector, xs: list[float]) -> list[int]:
    return [a.index for x in xs if (a := detector.update(x)) is not None]


def _unreachable_after(make: object) -> int:
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(5):
            obj = make()  # type: ignore[operator]
            del obj
        return gc.collect()
    finally:
        if was:
            gc.enable()


def test_the_same_alarms_as_rivers_page_hinkley_in_every_mode() -> None:
    xs = _series() + [-x for x in _series(4)]
    for mode in ("up", "down", "both"):
        ours = RiverDetector("ph", AcyclicPageHinkley(mode=mode, threshold=20.0))
        theirs = RiverDetector("ph", drift.PageHinkley(mode=mode, threshold=20.0))
        assert _alarms(ours, xs) == _alarms(theirs, xs)
        assert _alarms(ours, xs)  # it does fire


def test_a_detector_and_its_restored_copies_leave_no_cycles() -> None:
    # river's keeps a bound method on itself: the cyclic collector had to free each one.
    assert _unreachable_after(lambda: drift.PageHinkley()) > 0
    assert _unreachable_after(lambda: RiverDetector("ph", AcyclicPageHinkley())) == 0
    detector = RiverDetector("ph", AcyclicPageHinkley())
    _alarms(detector, _series())
    blob = pickle.dumps(detector)
    assert _unreachable_after(lambda: pickle.loads(blob)) == 0
    typed = state_format.dumps(detector)
    assert _unreachable_after(lambda: state_format.loads(typed)) == 0


def _rivers(detector: drift.PageHinkley) -> RiverDetector:
    """A wrapper around river's own class, as the code before the acyclic one made it."""
    old = RiverDetector.__new__(RiverDetector)
    old.name, old.detector, old._initial, old._index = "ph", detector, detector.clone(), 0
    return old


def test_a_snapshot_of_rivers_class_is_read_into_the_acyclic_one() -> None:
    xs = _series()
    old = _rivers(drift.PageHinkley(threshold=20.0))
    same = RiverDetector("ph", AcyclicPageHinkley(threshold=20.0))
    assert _alarms(old, xs[:700]) == _alarms(same, xs[:700])
    restored = pickle.loads(pickle.dumps(old))  # an earlier version's snapshot
    assert type(restored.detector) is AcyclicPageHinkley
    assert type(restored.detector) is AcyclicPageHinkley
    assert type(restored._initial) is AcyclicPageHinkley
    assert "_test_drift" not in vars(restored.detector)
    assert _alarms(restored, xs[700:]) == _alarms(same, xs[700:])
    restored.reset()
    assert type(restored.detector) is AcyclicPageHinkley


def test_a_bare_detector_of_rivers_class_is_wrapped_into_the_acyclic_one() -> None:
    # Snapshots from before the wrapper held river's detectors bare: they are wrapped anew.
    wrapped = RiverDetector("ph", drift.PageHinkley(threshold=20.0))
    assert type(wrapped.detector) is AcyclicPageHinkley
    assert type(wrapped._initial) is AcyclicPageHinkley
    assert "_test_drift" not in vars(wrapped.detector)
