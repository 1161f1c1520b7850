"""The CUSUM and Page-Hinkley detectors: Siegmund's calibration, checked by simulation, and
the detectors' behaviour (location, restarts, pickling, scale-freeness).

Monte Carlo tolerances: in-control run lengths are close to geometric (standard deviation
about equal to the mean), so a count of ``A`` alarms has a relative standard error of about
``1 / sqrt(A)``. Each rate test is sized for ~1,000 alarms or more (standard error ~3 %) and
allows a deviation of 15 %, over four standard errors, on top of the few per cent of
Siegmund's approximation (338 against the exact 336 at ``k = 0.5, h = 4``). The seeds are
fixed, so the tests are deterministic; the margins make them robust to changing the seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from state_support import stored

from adaptd.daemon.core.detectors.cusum import (
    OVERSHOOT,
    Cusum,
    arl_of,
    threshold_for_arl,
    two_sided_threshold,
)
from adaptd.daemon.core.detectors.page_hinkley import PageHinkley
from adaptd.daemon.core.detectors.protocol import Alarm, ChangeDetector

DETECTORS = [Cusum, PageHinkley]


def _alarms(detector: ChangeDetector, xs: np.ndarray) -> list[Alarm]:
    return [a for a in map(detector.update, xs.tolist()) if a is not None]


def _threshold(detector: Cusum | PageHinkley) -> float:
    return detector.h if isinstance(detector, Cusum) else detector.threshold


# --- Siegmund's approximation and its inverse ---------------------------------------------


def test_siegmund_matches_the_textbook_value() -> None:
    # k = 0.5, h = 4: the exact one-sided in-control ARL is ~336 (Siegmund gives 338.1).
    assert arl_of(4.0, 0.5) == pytest.approx(336.0, rel=0.01)
    assert arl_of(4.0, 0.5) == pytest.approx(338.09, abs=0.01)


def test_siegmund_at_zero_drift_is_b_squared_and_continuous() -> None:
    h = 5.0
    b2 = (h + OVERSHOOT) ** 2
    assert arl_of(h, 0.5, shift=0.5) == pytest.approx(b2)
    for eps in (1e-3, 1e-5, 1e-7):  # both sides of the series cut-off
        assert arl_of(h, 0.5, shift=0.5 + eps) == pytest.approx(b2, rel=1e-2)
        assert arl_of(h, 0.5, shift=0.5 - eps) == pytest.approx(b2, rel=1e-2)


def test_siegmund_decreases_with_the_shift_and_overflows_to_inf() -> None:
    arls = [arl_of(6.0, 0.5, shift=s) for s in (-0.5, 0.0, 0.5, 1.0, 2.0)]
    assert arls == sorted(arls, reverse=True)
    assert arl_of(1000.0, 0.5) == math.inf


@pytest.mark.parametrize("k", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("arl", [50.0, 500.0, 20_000.0, 1e7])
def test_threshold_for_arl_inverts_arl_of(arl: float, k: float) -> None:
    h = threshold_for_arl(arl, k)
    assert arl_of(h, k) == pytest.approx(arl, rel=1e-9)
    assert threshold_for_arl(arl_of(h, k), k) == pytest.approx(h, rel=1e-9)


def test_two_sided_threshold_gives_each_side_twice_the_arl() -> None:
    assert two_sided_threshold(20.0, 0.5) == threshold_for_arl(1000.0, 0.5)
    assert Cusum(false_alarms_per_10k=20.0).h == threshold_for_arl(1000.0, 0.5)
    assert PageHinkley(false_alarms_per_10k=20.0).threshold == threshold_for_arl(1000.0, 0.5)
    assert Cusum().h == pytest.approx(8.045, abs=1e-3)  # the default: 1 per 10,000


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: threshold_for_arl(1.0, 0.5), "arl must be"),  # below the ARL at h = 0
        (lambda: threshold_for_arl(math.inf, 0.5), "arl must be"),
        (lambda: threshold_for_arl(100.0, -0.1), "k must be"),
        (lambda: arl_of(-1.0, 0.5), "h must be"),
        (lambda: Cusum(false_alarms_per_10k=0.0), "false_alarms_per_10k"),
        (lambda: Cusum(false_alarms_per_10k=math.nan), "false_alarms_per_10k"),
        (lambda: Cusum(warmup=2), "warmup"),
        (lambda: Cusum(warmup=10.0), "warmup"),
        (lambda: PageHinkley(delta=-1.0), "delta must be"),
    ],
)
def test_invalid_arguments_raise(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# --- Calibration against simulation -------------------------------------------------------


def test_siegmund_threshold_gives_the_target_rate_on_the_plain_recursion() -> None:
    # The two-sided recursion with known in-control parameters, restarting at each alarm:
    # 2,000 streams x 5,000 events = 1e7 events, ~20,000 alarms (standard error ~0.7 %).
    # Measured 20.25, 20.45 and 19.93 with three seeds: Siegmund's ARL is ~1 % long here.
    target, k = 20.0, 0.5  # ARL0 500
    h = two_sided_threshold(target, k)
    rng = np.random.default_rng(12)
    pos, neg, alarms = np.zeros(2000), np.zeros(2000), 0
    steps = 5000
    for _ in range(steps):
        z = rng.standard_normal(pos.size)
        pos = np.maximum(0.0, pos + z - k)
        neg = np.maximum(0.0, neg - z - k)
        hit = (pos > h) | (neg > h)
        alarms += int(hit.sum())
        pos[hit] = 0.0
        neg[hit] = 0.0
    rate = alarms / (pos.size * steps) * 10_000
    assert rate == pytest.approx(target, rel=0.05)


@pytest.mark.parametrize("cls", DETECTORS)
def test_detector_false_alarm_rate_matches_the_target(cls) -> None:
    # The detector itself, self-starting standardisation and re-warming included, on one
    # in-control stream of 1e6 events: ~1,900 alarms (standard error ~2.3 %). No alarm is
    # possible in the warm-up after each one, so the expected rate is the target times
    # ARL0 / (ARL0 + warmup) = 18.9. Measured with three seeds: 18.9 +/- 0.1 for CUSUM,
    # 18.3 +/- 0.1 for Page-Hinkley (its deviations are a little lighter-tailed).
    target = 20.0
    detector = cls(false_alarms_per_10k=target)
    n = 1_000_000
    x = np.random.default_rng(5).normal(-3.0, 0.2, n)
    rate = len(_alarms(detector, x)) / n * 10_000
    arl0 = 10_000 / target
    assert rate == pytest.approx(target * arl0 / (arl0 + detector.warmup), rel=0.15)
    assert rate == pytest.approx(target, rel=0.25)


@pytest.mark.parametrize("cls", DETECTORS)
def test_delay_for_a_one_sd_shift_is_siegmunds_out_of_control_arl(cls) -> None:
    # A 1-sd rise after 500 in-control events, 600 times: delays have a standard deviation
    # of ~8 events, so their mean has a standard error of ~0.33 (2 %); Siegmund's zero-state
    # ARL at the default h is 16.4, measured 16.7-16.8 with three seeds for either detector.
    # Runs with a false alarm before the change (~4 %) are left out.
    detector = cls()
    expected = arl_of(_threshold(detector), 0.5, shift=1.0)
    assert expected == pytest.approx(16.4, abs=0.1)
    rng, change, delays = np.random.default_rng(9), 500, []
    for _ in range(600):
        detector.reset()
        x = rng.standard_normal(change + 150)
        x[change:] += 1.0
        for i, v in enumerate(x.tolist()):
            alarm = detector.update(v)
            if alarm is not None:
                if i >= change:
                    delays.append(alarm.index - change + 1)
                break
    assert len(delays) >= 550  # few false alarms, and no change missed
    assert np.mean(delays) == pytest.approx(expected, rel=0.10)


# --- Behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", DETECTORS)
def test_protocol_and_name(cls) -> None:
    detector = cls()
    assert isinstance(detector, ChangeDetector)
    assert detector.name == {Cusum: "cusum", PageHinkley: "page_hinkley"}[cls]
    assert cls.__name__ in repr(detector)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("cls", DETECTORS)
def test_location_of_a_clear_shift(cls, sign: float) -> None:
    # A 2-sd shift at 400 in 100 seeded streams: the location is usually exact.
    errors = []
    for seed in range(100):
        x = np.random.default_rng(seed).normal(size=800)
        x[400:] += 2.0 * sign
        detector = cls()
        after = [a for a in _alarms(detector, x) if a.index >= 400]
        if after:  # a false alarm just before the change can hide it in the warm-up
            first = after[0]
            assert first.location <= first.index
            assert first.score > _threshold(detector)
            errors.append(abs(first.location - 400))
    assert len(errors) >= 95
    assert np.median(errors) <= 1
    assert np.percentile(errors, 90) <= 6


@pytest.mark.parametrize("cls", DETECTORS)
def test_two_changes_give_two_alarms(cls) -> None:
    x = np.random.default_rng(0).normal(5.0, 3.0, 1000)
    x[300:700] += 2.0 * 3.0
    detector = cls()
    alarms = _alarms(detector, x)
    assert len(alarms) == 2
    (up, down) = alarms
    assert abs(up.location - 300) <= 5 and 300 <= up.index <= 320
    assert abs(down.location - 700) <= 5 and 700 <= down.index <= 720
    assert up.score > _threshold(detector) and down.score > _threshold(detector)


@pytest.mark.parametrize("cls", DETECTORS)
def test_no_alarm_during_warm_up(cls) -> None:
    detector = cls(warmup=40)
    x = np.random.default_rng(1).normal(size=40) * np.array([1.0, 1e6] * 20)
    assert _alarms(detector, x) == []
    # the warm-up after an alarm is quiet too
    x = np.concatenate([np.zeros(20), np.random.default_rng(2).normal(size=500)])
    x[200:] += 5.0
    alarms = _alarms(cls(warmup=40), x)
    assert alarms[0].index >= 40
    assert all(b.index - a.index > 40 for a, b in itertools.pairwise(alarms))


@pytest.mark.parametrize("cls", DETECTORS)
def test_constant_warm_up_is_extended_until_values_vary(cls) -> None:
    detector = cls()
    assert _alarms(detector, np.full(100, 7.0)) == []
    x = np.random.default_rng(3).normal(7.0, 1.0, 300)
    alarms = _alarms(detector, x)
    assert all(math.isfinite(a.score) for a in alarms)


@pytest.mark.parametrize("cls", DETECTORS)
def test_non_finite_values_are_counted_but_ignored(cls) -> None:
    x = np.random.default_rng(4).normal(size=800)
    x[500:] += 2.0
    clean = _alarms(cls(), x)
    with_nan = _alarms(cls(), np.insert(x, 100, [np.nan, np.inf]))
    assert [(a.index + 2, a.location + 2) for a in clean] == [
        (a.index, a.location) for a in with_nan
    ]


@pytest.mark.parametrize("stop", [10, 450])  # in the warm-up, mid-stream
@pytest.mark.parametrize("cls", DETECTORS)
def test_pickle_round_trip_mid_stream(cls, stop: int) -> None:
    x = np.random.default_rng(6).normal(size=1000)
    x[500:] += 1.5
    detector = cls(k=0.4) if cls is Cusum else cls(delta=0.4)
    before = _alarms(detector, x[:stop])
    copy = stored(detector)
    assert not hasattr(copy, "__dict__")
    rest, rest_copy = _alarms(detector, x[stop:]), _alarms(copy, x[stop:])
    assert rest == rest_copy
    assert before + rest == _alarms(cls(k=0.4) if cls is Cusum else cls(delta=0.4), x)
    assert any(a.index >= 500 for a in rest)


@pytest.mark.parametrize("cls", DETECTORS)
def test_scale_and_offset_free(cls) -> None:
    x = np.random.default_rng(8).normal(size=3000)
    x[1000:2000] += 1.0
    x[2000:] -= 0.5
    base = _alarms(cls(), x)
    scaled = _alarms(cls(), x * 1e4 + 3e5)
    assert len(base) >= 2
    assert [(a.index, a.location) for a in base] == [(a.index, a.location) for a in scaled]
    assert [a.score for a in scaled] == pytest.approx([a.score for a in base], rel=1e-6)


@pytest.mark.parametrize("cls", DETECTORS)
def test_reset_forgets_everything(cls) -> None:
    x = np.random.default_rng(10).normal(size=1200)
    x[600:] -= 1.5
    detector = cls()
    first = _alarms(detector, x)
    detector.reset()
    assert _alarms(detector, x) == first == _alarms(cls(), x)
