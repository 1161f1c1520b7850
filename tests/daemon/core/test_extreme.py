"""Extreme moves: one return of ``extreme_z`` long-run standard deviations is a shift at once."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from pydantic import ValidationError
from state_support import stored

from adaptd.daemon.config.settings import ConfigError, DetectionSettings, load_settings
from adaptd.daemon.core.detection import Shift, ShiftDetector
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.extreme import ExtremeMove
from adaptd.daemon.core.schema import MarketEvent
from adaptd.daemon.core.stream import StreamConfig, StreamState
from adaptd.daemon.service.configs import stream_config, tasks_of

SIGMA = 0.01
EXTREME = ("extreme", "returns")
SETTINGS = DetectionSettings(
    detectors=("adwin", "page_hinkley"),
    channels=("returns", "volatility", "error"),
    skip=(),
    adwin_delta=0.002,
    ph_threshold=30.0,
    ph_delta=0.1,
    ph_alpha=1.0,
    warmup_events=100,
    debounce_events=10,
    min_detectors=1,
    cooldown_events=100,
    extreme_z=8.0,
)


def returns(n: int, moves: dict[int, float], seed: int = 0, vol_at: int | None = None) -> list:
    """Gaussian returns of volatility SIGMA (three times it from vol_at), with a move of
    moves[i] sigmas at index i."""
    rng = random.Random(seed)
    vol_at = n if vol_at is None else vol_at
    out = [rng.gauss(0.0, SIGMA if i < vol_at else 3 * SIGMA) for i in range(n)]
    for i, k in moves.items():
        out[i] = k * SIGMA
    return out


def run(detector: ShiftDetector, rets: list) -> list[Shift]:
    shifts = []
    for i, r in enumerate(rets):
        shift = detector.update(i, r, SIGMA)
        if shift is not None:
            shifts.append(shift)
    return shifts


def settings(**update: object) -> DetectionSettings:
    return SETTINGS.model_copy(update=update)


# -- the check itself ------------------------------------------------------------------


def test_a_move_is_extreme_from_the_threshold_on_either_way() -> None:
    move = ExtremeMove(8.0)
    assert [move.update(z).drift_detected for z in (8.0, -8.0, 7.999, -7.999, 0.0, 1e9)] == [
        True,
        True,
        False,
        False,
        False,
        True,
    ]


def test_a_zero_threshold_never_fires() -> None:
    move = ExtremeMove(0.0)
    assert not any(move.update(z).drift_detected for z in (0.0, 50.0, -1e9))


@pytest.mark.parametrize("threshold", [-1.0, math.nan, math.inf])
def test_a_bad_threshold_is_an_error_naming_the_setting(threshold: float) -> None:
    with pytest.raises(ValueError, match="extreme_z must be 0"):
        ExtremeMove(threshold)
    with pytest.raises(ValidationError, match=r"extreme_z\n.*extreme_z must be 0 \(off\)"):
        DetectionSettings(extreme_z=threshold)


def test_the_setting_is_read_from_the_environment_where_0_turns_it_off() -> None:
    assert DetectionSettings().extreme_z == 8.0
    env = {"ADAPTD_DETECTION__EXTREME_Z": "0"}
    assert load_settings(environ=env).detection.extreme_z == 0.0
    with pytest.raises(ConfigError, match=r"detection\.extreme_z: .*got -2\.0"):
        load_settings(environ={"ADAPTD_DETECTION__EXTREME_Z": "-2"})


# -- in the detector -------------------------------------------------------------------


def test_a_ten_sigma_move_is_a_shift_at_that_event() -> None:
    assert run(ShiftDetector(SETTINGS), returns(3000, {})) == []  # nothing else fires
    detector = ShiftDetector(SETTINGS)
    [shift] = run(detector, returns(3000, {600: -10.0}))
    assert (shift.index, shift.first_index) == (600, 600)
    assert shift.triggers[0] == "extreme:returns"
    assert shift.stats["returns.z"] == pytest.approx(-10.0, rel=0.05)
    assert shift.stats["scale"] == pytest.approx(SIGMA, rel=0.05)
    assert detector.firing_counts[EXTREME] == 1
    assert detector.shifts == 1


def test_a_threshold_beyond_the_channels_clip_compares_the_unclipped_move() -> None:
    high = settings(extreme_z=12.0)
    assert [s.index for s in run(ShiftDetector(high), returns(3000, {600: -15.0}))] == [600]
    assert 600 not in [s.index for s in run(ShiftDetector(high), returns(3000, {600: -10.0}))]


def test_moves_below_the_threshold_never_fire_it() -> None:
    for seed in range(4):
        # Six sigmas: also below 8 long-run scales when the scale restarted low after a shift.
        moves = {i: 6.0 * (-1) ** i for i in range(300, 5000, 400)}
        rets = returns(5000, moves, seed=seed)
        detector = ShiftDetector(SETTINGS)
        # In the warm-up the scale rests on a few returns and may be far too small.
        assert run(detector, rets[:100]) == []
        warm = detector.firing_counts.get(EXTREME, 0)
        shifts = [detector.update(i, r, SIGMA) for i, r in enumerate(rets[100:], 100)]
        assert detector.firing_counts.get(EXTREME, 0) == warm
        assert all("extreme:returns" not in s.triggers for s in shifts if s is not None)


def test_turned_off_it_never_fires() -> None:
    detector = ShiftDetector(settings(extreme_z=0.0))
    shifts = run(detector, returns(3000, {600: -10.0, 1500: 30.0}))
    assert EXTREME not in detector.firing_counts
    assert all("extreme:returns" not in s.triggers for s in shifts)
    assert 600 not in [s.index for s in shifts]


def test_the_warm_up_absorbs_it_and_ends_where_the_detectors_do() -> None:
    early = ShiftDetector(SETTINGS)
    assert run(early, returns(1000, {99: -10.0})) == []
    assert early.firing_counts[EXTREME] == 1
    assert [s.index for s in run(ShiftDetector(SETTINGS), returns(1000, {100: -10.0}))] == [100]


def test_the_cool_down_absorbs_a_second_move_and_a_later_one_fires_again() -> None:
    detector = ShiftDetector(SETTINGS)
    shifts = run(detector, returns(3000, {600: -10.0, 650: 10.0, 900: -15.0}))
    assert [(s.index, s.triggers[0]) for s in shifts] == [
        (600, "extreme:returns"),
        (900, "extreme:returns"),
    ]
    assert detector.firing_counts[EXTREME] == 3


@pytest.mark.parametrize("seed", [0, 2, 3, 5, 6, 7, 9])  # no false alarm before the crash
def test_a_crash_into_a_volatile_regime_shifts_at_once_and_only_once(seed: int) -> None:
    rets = returns(3000, {600: -10.0}, seed=seed, vol_at=600)
    waiting = run(ShiftDetector(settings(extreme_z=0.0)), rets)
    assert waiting[0].index > 600  # the detectors need more events
    detector = ShiftDetector(SETTINGS)
    [shift] = run(detector, rets)
    assert (shift.index, shift.triggers[0]) == (600, "extreme:returns")
    # The detectors fired on the new regime too, absorbed by the cool-down, and then
    # restarted on it as the baseline.
    assert sum(n for pair, n in detector.firing_counts.items() if pair != EXTREME) > 0


def test_it_needs_neither_debounce_nor_min_detectors() -> None:
    strict = ShiftDetector(settings(min_detectors=3, debounce_events=1))
    [shift] = run(strict, returns(3000, {600: -10.0}))
    assert (shift.index, shift.triggers) == (600, ("extreme:returns",))


def test_firings_waiting_in_the_debounce_window_join_its_shift() -> None:
    # One error detector and min_detectors=2: its firing can never confirm on its own, and
    # the returns channel is not watched at all; the extreme move needs neither.
    detector = ShiftDetector(
        settings(detectors=("adwin",), channels=("error",), min_detectors=2, debounce_events=50)
    )
    rng = random.Random(9)
    errors = [rng.gauss(0, 1) ** 2 * (1.0 if i < 300 else 16.0) for i in range(600)]
    rets = returns(600, {})
    fired_at, shifts = None, []
    for i in range(600):
        if fired_at is not None and i == fired_at + 5:
            rets[i] = -10 * SIGMA
        for shift in (detector.update(i, rets[i], SIGMA), detector.update_error(i, errors[i])):
            if shift is not None:
                shifts.append(shift)
        if fired_at is None and detector.firing_counts[("adwin", "error")]:
            fired_at = i
    assert fired_at is not None and fired_at >= 300
    [shift] = shifts
    assert shift.triggers == ("adwin:error", "extreme:returns")
    assert (shift.first_index, shift.index) == (fired_at, fired_at + 5)


# -- in a stream -----------------------------------------------------------------------


def stream_setup(extreme_z: float = 8.0) -> tuple[StreamConfig, list[MarketEvent]]:
    """A stream's config, and 900 events of a quiet walk with a 2 % crash (twenty times the
    usual move) at event 600."""
    config_settings = load_settings(
        environ={},
        features={"momentum_horizons": [5, 20], "warmup_events": 20, "label_horizon": 3},
        detection={"warmup_events": 100, "cooldown_events": 50, "extreme_z": extreme_z},
        adaptation={"shots": 12, "query_size": 4},
        replay={"episode_size": 16},
    )
    rets = np.random.default_rng(0).normal(0.0, 0.001, 900)
    rets[600] = -0.02
    prices = 100.0 * np.exp(np.cumsum(rets))
    events = [
        MarketEvent(stream="X", ts_ms=1_700_000_000_000 + 1000 * i, price=float(p))
        for i, p in enumerate(prices)
    ]
    return stream_config(config_settings, tasks_of(config_settings)), events


def feed(state: StreamState, events: list[MarketEvent], lo: int, hi: int) -> list[Effects]:
    outs = []
    for b in range(lo, hi, 10):
        out = Effects()
        for i in range(b, min(hi, b + 10)):
            assert state.on_event(events[i], 5000 + i, out) is None
        state.finish_batch({}, out)
        outs.append(out)
    return outs


def test_a_crash_in_a_stream_is_a_shift_at_its_event_and_then_an_adaptation_request() -> None:
    config, events = stream_setup()
    outs = feed(StreamState("X", "in", 0, config), events, 0, 900)
    [shift] = [s for out in outs for s in out.shifts]
    assert shift.offset == 5600
    assert (shift.shift.index, shift.shift.triggers[0]) == (600, "extreme:returns")
    [request] = [r for out in outs for r in out.requests]
    assert request.shift == shift
    assert request.first_offset >= 5600
    assert sum(out.firings.get(EXTREME, 0) for out in outs) == 1


def test_a_restored_stream_takes_the_setting_of_its_new_config() -> None:
    config, events = stream_setup()
    state = StreamState("X", "in", 0, config)
    feed(state, events, 0, 500)
    restored = stored(state)
    off, _ = stream_setup(extreme_z=0.0)
    restored.attach(off)  # the operator turned extreme moves off, then restarted
    outs = feed(restored, events, 500, 900)
    assert all(s.shift.index != 600 for out in outs for s in out.shifts)
    assert all(EXTREME not in out.firings for out in outs)
