"""FOCuS: the pruned statistic against brute force, the candidates it keeps, its calibration
checked by simulation, and the detector's behaviour (delay, location, restarts, pickling,
scale-freeness).

Monte Carlo tolerances, as for the CUSUM's tests: in-control run lengths are close to
geometric (standard deviation about equal to the mean), so a count of ``A`` alarms has a
relative standard error of about ``1 / sqrt(A)``. The rate tests are sized for ~1,900 and
~3,950 alarms (standard errors 2.3 % and 1.6 %) and allow 15 % and 8 %: over six and five
standard errors, on top of the fit's own error (at most 1.4 % against its simulation) and,
for the self-starting detector, the approximation of its standardisation (the CUSUM's tests
allow the same 15 %). The seeds are fixed, so the tests are deterministic; the margins make
them robust to changing the seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from state_support import stored

from adaptd.daemon.core.detectors.cusum import Cusum
from adaptd.daemon.core.detectors.cusum import arl_of as cusum_arl_of
from adaptd.daemon.core.detectors.focus import RATE_RANGE, Focus, arl_of, threshold_for
from adaptd.daemon.core.detectors.protocol import Alarm, ChangeDetector


def _alarms(detector: ChangeDetector, xs: np.ndarray) -> list[Alarm]:
    return [a for a in map(detector.update, xs.tolist()) if a is not None]


def _brute_force(z: np.ndarray) -> list[tuple[float, int]]:
    """``(Q_t, arg max tau)`` after each value: every start ``tau`` of the segment
    ``z[tau..t]`` tried, its sum accumulated backwards from ``t`` (not from the prefix sums
    FOCuS uses); the earliest ``tau`` among exact ties, -1 when ``Q_t`` is 0."""
    out = []
    for t in range(1, z.size + 1):
        sums = np.cumsum(z[t - 1 :: -1])[::-1]  # sums[tau] = z[tau] + ... + z[t - 1]
        values = sums * sums / (2.0 * np.arange(t, 0, -1))
        k = int(np.argmax(values))  # the first maximum: the earliest start
        out.append((float(values[k]), k if values[k] > 0.0 else -1))
    return out


def _watch(detector: Focus, xs: np.ndarray) -> list[tuple[float, int]]:
    """The detector's statistic and arg max start after each value (no alarm allowed)."""
    out = []
    for x in xs.tolist():
        assert detector.update(x) is None
        out.append((detector.statistic, detector.start))
    return out


def _unbounded(**kwargs) -> Focus:
    """A detector that never alarms, to follow its statistic."""
    detector = Focus(**kwargs)
    detector.threshold = math.inf
    return detector


# --- The statistic: exact, by functional pruning ------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shift", [0.0, 0.4, -1.0, 3.0])
def test_statistic_equals_brute_force_at_every_step(seed: int, shift: float) -> None:
    mean, sd = 4.0, 2.5
    x = np.random.default_rng(seed).normal(mean, sd, 400)
    x[250:] += shift * sd
    got = _watch(_unbounded(known=(mean, sd)), x)
    want = _brute_force((x - mean) / sd)
    for t, ((q, start), (q_bf, start_bf)) in enumerate(zip(got, want, strict=True)):
        assert q == pytest.approx(q_bf, rel=1e-9, abs=1e-9), t
        assert start == start_bf, t


def test_statistic_and_ties_on_integer_data() -> None:
    # Integer values: every sum and Q_t is exact in both computations, and exact ties (equal
    # Q_t from several starts, collinear points) are everywhere. Both return the earliest.
    rng = np.random.default_rng(11)
    for steps in (rng.integers(-1, 2, 300), rng.integers(-3, 4, 300), np.tile([1, -1], 100)):
        x = steps.astype(float)
        got = _watch(_unbounded(known=(0.0, 1.0)), x)
        assert got == _brute_force(x)


def test_sums_are_rebased_without_loss() -> None:
    # z near 1,000 per value: the running sum passes the re-basing limit (2**20) twice.
    x = np.random.default_rng(12).integers(990, 1010, 2500).astype(float)
    got = _watch(_unbounded(known=(0.0, 1.0)), x)
    assert got == _brute_force(x)


def test_matches_the_reference_implementation() -> None:
    # changepoint_online (Romano, Grose et al.; GPL, test-only and optional): its Focus with
    # a known pre-change mean is the same statistic, and its changepoint our start.
    reference = pytest.importorskip("changepoint_online")
    x = np.random.default_rng(13).normal(size=3000)
    x[1500:] += 0.3
    ref = reference.Focus(reference.Gaussian(loc=0.0))
    ours = _unbounded(known=(0.0, 1.0))
    for t, v in enumerate(x.tolist()):
        ref.update(v)
        ours.update(v)
        assert ours.statistic == pytest.approx(ref.statistic(), rel=1e-9, abs=1e-9)
        if t % 100 == 99 and ours.statistic > 0.0:
            assert ours.start == ref.changepoint()["changepoint"]


# --- Candidates kept ------------------------------------------------------------------------


@pytest.mark.parametrize("known", [None, (0.0, 1.0)])
def test_few_candidates_are_kept_in_control(known) -> None:
    # Both signs' lists together (each holds the newest point): 15 to 21 at most over
    # 10,000 values with five seeds; 31 in 20,000 simulated streams of up to 10**6 values.
    worst = []
    for seed in range(3):
        detector = _unbounded(known=known)
        most = 0
        for v in np.random.default_rng(seed).normal(size=10_000).tolist():
            detector.update(v)
            most = max(most, detector.candidates)
        worst.append(most)
    print(f"most candidates kept over 10,000 in-control values: {worst}")
    assert max(worst) <= 50


@pytest.mark.parametrize("cap", [4, 10, 200])
def test_max_candidates_bounds_memory(cap: int) -> None:
    # An accelerating drift: its prefix sums are convex, so every point is on the hull.
    z = 0.001 * np.arange(1500.0)
    detector = _unbounded(known=(0.0, 1.0), max_candidates=cap)
    sizes, got = [], []
    for v in z.tolist():
        detector.update(v)
        sizes.append(detector.candidates)
        got.append(detector.statistic)
    assert max(sizes) == cap
    exact = [q for q, _ in _brute_force(z)]
    assert all(q <= e * (1.0 + 1e-12) for q, e in zip(got, exact, strict=True))
    # while the cap is not reached the statistic is exact; after it, a lower bound
    first_full = sizes.index(cap)
    assert got[: first_full + 1] == pytest.approx(exact[: first_full + 1], rel=1e-9)
    assert got[-1] < exact[-1]


# --- Calibration ----------------------------------------------------------------------------


def test_fit_inverts_and_spans_the_documented_range() -> None:
    for rate in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0):
        h = threshold_for(rate)
        assert arl_of(h) == pytest.approx(10_000.0 / rate, rel=1e-9)
    assert threshold_for(1.0) == pytest.approx(9.416, abs=1e-3)
    assert Focus().threshold == threshold_for(1.0)
    hs = [threshold_for(r) for r in np.geomspace(*RATE_RANGE, 50)]
    assert hs == sorted(hs, reverse=True)
    # the simulated first-passage ARLs the fit was made from (20,000 streams), a few of them
    simulated = {4.0: 78.6, 6.0: 452.1, 8.0: 2724.1, 10.0: 17284.9, 11.5: 69524.9}
    for h, arl in simulated.items():
        assert arl_of(h) == pytest.approx(arl, rel=0.015)


def test_fit_matches_a_fresh_simulation_of_the_statistic() -> None:
    # The statistic with known parameters restarts right after each alarm (no warm-up), so
    # the alarm rate is exactly 1 / ARL. 400,000 events at 100 per 10,000: ~3,950 alarms
    # (standard error 1.6 %). Measured on 2e7 events: 98.7 at 100, 10.03 at 10, 0.99 at 1
    # per 10,000 (the fit is 1 % long at 100).
    target = 100.0
    detector = Focus(false_alarms_per_10k=target, known=(0.0, 1.0))
    n = 400_000
    rate = len(_alarms(detector, np.random.default_rng(21).standard_normal(n))) / n * 10_000
    assert rate == pytest.approx(target, rel=0.08)


def test_detector_false_alarm_rate_matches_the_target() -> None:
    # The detector itself, self-starting standardisation and re-warming included, on one
    # in-control stream of 1e6 events: ~1,900 alarms (standard error ~2.3 %). No alarm is
    # possible in the warm-up after each one, so the expected rate is the target times
    # ARL0 / (ARL0 + warmup) = 18.9. Measured on 2e7 events: 76.2 against 76.9 expected at
    # 100 per 10,000, 9.79 against 9.71 at 10, 1.004 against 0.997 at the default 1.
    target = 20.0
    detector = Focus(false_alarms_per_10k=target)
    n = 1_000_000
    x = np.random.default_rng(5).normal(-3.0, 0.2, n)
    rate = len(_alarms(detector, x)) / n * 10_000
    arl0 = 10_000 / target
    assert rate == pytest.approx(target * arl0 / (arl0 + detector.warmup), rel=0.15)


def _delays(detector: ChangeDetector, shift: float, runs: int, after: int) -> list[int]:
    rng, change, delays = np.random.default_rng(9), 500, []
    for _ in range(runs):
        detector.reset()
        x = rng.standard_normal(change + after)
        x[change:] += shift
        for i, v in enumerate(x.tolist()):
            alarm = detector.update(v)
            if alarm is not None:
                if i >= change:
                    delays.append(alarm.index - change + 1)
                break
    return delays


def test_delay_for_a_one_sd_shift() -> None:
    # A 1-sd rise after 500 in-control events, 600 times (runs with a false alarm before the
    # change, ~4 %, left out): delays have a standard deviation of ~9 events, their mean a
    # standard error of ~0.36. Measured 18.2 at the default rate, against 16.7 for the CUSUM
    # tuned to exactly this shift on the same streams (Siegmund's 16.4).
    delays = _delays(Focus(), 1.0, runs=600, after=150)
    assert len(delays) >= 550
    assert np.mean(delays) == pytest.approx(18.2, rel=0.10)
    assert np.mean(delays) < 1.25 * cusum_arl_of(Cusum().h, 0.5, shift=1.0)


@pytest.mark.parametrize("shift", [0.5, 2.0])
def test_faster_than_a_cusum_tuned_to_another_shift(shift: float) -> None:
    # The same false-alarm rate; the CUSUM is tuned to 1 sd. Measured on these 200 runs:
    # 76.5 against 120.4 events for 0.5 sd (the change found within 600 events in 187 runs
    # against 166), 5.2 against 5.8 for 2 sd: four and three standard errors of the
    # difference (10.5 and 0.20 events, counted as if the runs were unpaired; they share
    # their streams, which makes the difference surer still).
    after = 600 if shift < 1.0 else 150
    focus = _delays(Focus(), shift, runs=200, after=after)
    cusum = _delays(Cusum(), shift, runs=200, after=after)
    print(
        f"shift {shift}: FOCuS {np.mean(focus):.1f} ({len(focus)} found), "
        f"CUSUM {np.mean(cusum):.1f} ({len(cusum)} found)"
    )
    assert len(focus) >= 185  # the runs without a false alarm before the change (~4 %)
    assert np.mean(focus) < np.mean(cusum)


# --- Behaviour ------------------------------------------------------------------------------


def test_protocol_name_and_repr() -> None:
    detector = Focus()
    assert isinstance(detector, ChangeDetector)
    assert detector.name == "focus"
    assert repr(detector).startswith("Focus(")
    assert detector.statistic == 0.0 and detector.start == -1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"false_alarms_per_10k": 0.0}, "false_alarms_per_10k"),
        ({"false_alarms_per_10k": 0.05}, "false_alarms_per_10k"),
        ({"false_alarms_per_10k": 150.0}, "false_alarms_per_10k"),
        ({"false_alarms_per_10k": math.nan}, "false_alarms_per_10k"),
        ({"warmup": 2}, "warmup"),
        ({"max_candidates": 3}, "max_candidates"),
        ({"max_candidates": 10.0}, "max_candidates"),
        ({"known": (0.0, 0.0)}, "known"),
        ({"known": (math.inf, 1.0)}, "known"),
        ({"known": (0.0, 1.0, 2.0)}, "known"),
    ],
)
def test_invalid_arguments_raise(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Focus(**kwargs)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_location_of_a_clear_shift(sign: float) -> None:
    # A 2-sd shift at 400 in 100 seeded streams: the location is usually exact.
    errors = []
    for seed in range(100):
        x = np.random.default_rng(seed).normal(size=800)
        x[400:] += 2.0 * sign
        detector = Focus()
        after = [a for a in _alarms(detector, x) if a.index >= 400]
        if after:  # a false alarm just before the change can hide it in the warm-up
            first = after[0]
            assert first.location <= first.index
            assert first.score > detector.threshold
            errors.append(abs(first.location - 400))
    assert len(errors) >= 95
    assert np.median(errors) <= 1
    assert np.percentile(errors, 90) <= 6


def test_two_changes_give_two_alarms() -> None:
    x = np.random.default_rng(0).normal(5.0, 3.0, 1000)
    x[300:700] += 2.0 * 3.0
    detector = Focus()
    alarms = _alarms(detector, x)
    assert len(alarms) == 2
    (up, down) = alarms
    assert abs(up.location - 300) <= 5 and 300 <= up.index <= 320
    assert abs(down.location - 700) <= 5 and 700 <= down.index <= 720
    assert up.score > detector.threshold and down.score > detector.threshold


def test_known_parameters_restart_at_once() -> None:
    # With the in-control law fixed, a lasting shift alarms again and again: the statistic
    # restarts at the value after each alarm, without a warm-up.
    x = np.random.default_rng(14).normal(size=600)
    x[200:400] += 3.0
    alarms = _alarms(Focus(known=(0.0, 1.0)), x)
    assert (alarms[0].index, alarms[0].location) == (201, 200)
    assert len(alarms) > 50
    assert all(200 <= a.location <= a.index < 402 for a in alarms)
    assert all(b.location > a.index for a, b in itertools.pairwise(alarms))
    assert min(b.index - a.index for a, b in itertools.pairwise(alarms)) <= 2


def test_no_alarm_during_warm_up() -> None:
    detector = Focus(warmup=40)
    x = np.random.default_rng(1).normal(size=40) * np.array([1.0, 1e6] * 20)
    assert _alarms(detector, x) == []
    x = np.concatenate([np.zeros(20), np.random.default_rng(2).normal(size=500)])
    x[200:] += 5.0
    alarms = _alarms(Focus(warmup=40), x)
    assert alarms[0].index >= 40
    assert all(b.index - a.index > 40 for a, b in itertools.pairwise(alarms))


def test_constant_warm_up_is_extended_until_values_vary() -> None:
    detector = Focus()
    assert _alarms(detector, np.full(100, 7.0)) == []
    x = np.random.default_rng(3).normal(7.0, 1.0, 300)
    assert all(math.isfinite(a.score) for a in _alarms(detector, x))


def test_non_finite_values_are_counted_but_ignored() -> None:
    x = np.random.default_rng(4).normal(size=800)
    x[500:] += 2.0
    clean = _alarms(Focus(), x)
    with_nan = _alarms(Focus(), np.insert(x, 100, [np.nan, np.inf]))
    assert clean
    assert [(a.index + 2, a.location + 2) for a in clean] == [
        (a.index, a.location) for a in with_nan
    ]


@pytest.mark.parametrize("stop", [10, 450])  # in the warm-up, mid-stream
def test_pickle_round_trip_mid_stream(stop: int) -> None:
    x = np.random.default_rng(6).normal(size=1000)
    x[500:] += 1.5
    detector = Focus(false_alarms_per_10k=3.0)
    before = _alarms(detector, x[:stop])
    copy = stored(detector)
    assert not hasattr(copy, "__dict__")
    assert (copy.statistic, copy.start, copy.candidates) == (
        detector.statistic,
        detector.start,
        detector.candidates,
    )
    rest, rest_copy = _alarms(detector, x[stop:]), _alarms(copy, x[stop:])
    assert rest == rest_copy
    assert before + rest == _alarms(Focus(false_alarms_per_10k=3.0), x)
    assert any(a.index >= 500 for a in rest)


def test_scale_and_offset_free() -> None:
    x = np.random.default_rng(8).normal(size=3000)
    x[1000:2000] += 1.0
    x[2000:] -= 0.5
    base = _alarms(Focus(), x)
    scaled = _alarms(Focus(), x * 1e4 + 3e5)
    assert len(base) >= 2
    assert [(a.index, a.location) for a in base] == [(a.index, a.location) for a in scaled]
    assert [a.score for a in scaled] == pytest.approx([a.score for a in base], rel=1e-6)


def test_reset_forgets_everything() -> None:
    x = np.random.default_rng(10).normal(size=1200)
    x[600:] -= 1.5
    detector = Focus()
    first = _alarms(detector, x)
    detector.reset()
    assert detector.candidates == 0
    assert _alarms(detector, x) == first == _alarms(Focus(), x)
