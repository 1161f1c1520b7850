"""Confirmation of alarms by PELT: the check on a window (relocation onto a step, retraction
on noise, absolute indices, scale-freeness, validation) and the :class:`Confirmed` wrapper
around a real CUSUM (a step kept and located, most false alarms withheld, reset, pickling).

The seeds are fixed, so the tests are deterministic; the margins (a 4-sd step, a wrapper
asked to withhold half of the raw false alarms where it withholds ~95 %) make them robust
to changing the seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from state_support import stored

from adaptd.daemon.core.detectors.confirm import Confirmation, Confirmed
from adaptd.daemon.core.detectors.cusum import Cusum
from adaptd.daemon.core.detectors.protocol import Alarm, ChangeDetector


def _alarms(detector: ChangeDetector, xs: np.ndarray) -> list[Alarm]:
    return [a for a in map(detector.update, xs.tolist()) if a is not None]


def _cusum() -> Cusum:
    return Cusum(false_alarms_per_10k=100.0)


class _Recording:
    """An inner detector that keeps the alarms it passes on (to compare with the wrapper's)."""

    def __init__(self, detector: ChangeDetector) -> None:
        self.detector = detector
        self.name = detector.name
        self.alarms: list[Alarm] = []

    def update(self, x: float) -> Alarm | None:
        alarm = self.detector.update(x)
        if alarm is not None:
            self.alarms.append(alarm)
        return alarm

    def reset(self) -> None:
        self.detector.reset()
        self.alarms = []


def _step(seed: int, n: int = 150, at: int = 90, size: float = 4.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0.0, 1.0, n)
    x[at:] += size
    return x


# --- Confirmation.check --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("estimate", [84, 87, 93, 96])
def test_check_relocates_an_estimate_onto_a_clear_step(seed: int, estimate: int) -> None:
    """A CUSUM's arg max can be a few values off; the segmentation puts it on the step."""
    assert Confirmation().check(_step(seed), 0, estimate) == 90


@pytest.mark.parametrize("seed", range(8))
def test_check_retracts_on_pure_noise(seed: int) -> None:
    x = np.random.default_rng(seed).normal(0.0, 1.0, 200)
    assert Confirmation().check(x, 0, 100) is None


def test_check_answers_in_absolute_indices() -> None:
    """``start`` is the index of the window's first value, and ``location`` is absolute."""
    x = _step(0)
    assert Confirmation().check(x, 1000, 1087) == 1090
    assert Confirmation().check(x, 1000, 1093) == 1090


@pytest.mark.parametrize("seed", range(5))
def test_check_is_free_of_scale_and_offset(seed: int) -> None:
    confirmation = Confirmation()
    for x in (_step(seed, size=1.5), np.random.default_rng(seed).normal(0.0, 1.0, 200)):
        expected = confirmation.check(x, 1000, 1088)
        assert confirmation.check(x * 1000.0 + 5.0, 1000, 1088) == expected
        assert confirmation.check(x * 1e-3 - 7.0, 1000, 1088) == expected


def test_check_takes_the_nearest_change_and_the_later_on_a_tie() -> None:
    x = np.random.default_rng(1).normal(0.0, 1.0, 120)
    x[40:80] += 5.0  # two changes, at 40 and 80
    confirmation = Confirmation()
    assert confirmation.check(x, 0, 59) == 40
    assert confirmation.check(x, 0, 61) == 80
    assert confirmation.check(x, 0, 60) == 80


def test_check_keeps_the_estimate_when_the_window_is_too_short() -> None:
    """Fewer than two segments' worth of values: nothing to judge by."""
    x = np.random.default_rng(0).normal(0.0, 1.0, 9)
    assert Confirmation(min_size=5).check(x, 50, 54) == 54


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 3}, "window"),
        ({"penalty": 0.0}, "penalty"),
        ({"penalty": -1.0}, "penalty"),
        ({"penalty": float("nan")}, "penalty"),
        ({"cost": "l2"}, "cost"),
    ],
)
def test_confirmation_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Confirmation(**kwargs)  # type: ignore[arg-type]


# --- Confirmed ------------------------------------------------------------------------------


def test_confirmed_is_named_after_its_detector() -> None:
    assert Confirmed(_cusum()).name == "cusum+pelt"


@pytest.mark.parametrize("seed", range(5))
def test_confirmed_keeps_and_locates_a_step(seed: int) -> None:
    """A 2-sd step at 300: confirmed within 3 of it, once ``after`` values have followed
    the inner detector's estimate (the confirmed alarm's index says when)."""
    x = np.random.default_rng(seed).normal(0.0, 1.0, 600)
    x[300:] += 2.0
    inner = _Recording(_cusum())
    detector = Confirmed(inner, after=10)
    confirmed = _alarms(detector, x)
    assert any(abs(a.location - 300) <= 3 for a in confirmed), confirmed
    held: dict[int, Alarm] = {}
    for a in inner.alarms:
        held.setdefault(a.location + detector.after - 1, a)
    for alarm in confirmed:
        raw = held[alarm.index]  # completed exactly ``after`` values from the raw location
        assert raw.index <= alarm.index
        assert alarm.score == raw.score
        # Relocation can move the location later than the raw one, never past a segment.
        assert alarm.location <= alarm.index + 1 - detector.confirmation.min_size


@pytest.mark.parametrize("seed", range(3))
def test_confirmed_withholds_most_false_alarms(seed: int) -> None:
    x = np.random.default_rng(100 + seed).normal(0.0, 1.0, 20_000)
    raw = len(_alarms(_cusum(), x))
    detector = Confirmed(_cusum())
    confirmed = len(_alarms(detector, x))
    assert raw > 0  # (or the test could not fail)
    assert confirmed <= raw / 2
    assert detector.retracted > 0
    # The rest were raised while one was held (the same change), or are held at the end.
    assert confirmed + detector.retracted <= raw


def test_reset_makes_a_second_run_identical() -> None:
    x = _step(3, n=2_000, at=1_200, size=1.5)
    detector = Confirmed(_cusum())
    first, retracted = _alarms(detector, x), detector.retracted
    assert first
    detector.reset()
    assert detector.retracted == 0
    assert _alarms(detector, x) == first
    assert detector.retracted == retracted


def test_pickling_mid_stream_changes_nothing() -> None:
    x = _step(4, n=1_000, at=400, size=2.0)
    whole = Confirmed(_cusum())
    expected = _alarms(whole, x)
    assert expected
    detector = Confirmed(_cusum())
    before = _alarms(detector, x[:150])
    detector = stored(detector)
    assert before + _alarms(detector, x[150:]) == expected
    assert detector.retracted == whole.retracted


@pytest.mark.parametrize("after", [0, -1])
def test_confirmed_rejects_a_non_positive_after(after: int) -> None:
    with pytest.raises(ValueError, match="after"):
        Confirmed(_cusum(), after=after)
