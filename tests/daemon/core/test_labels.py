from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import stored

from adaptd.daemon.core.labels import DelayedLabeler, Example
from adaptd.daemon.core.tasks.returns import ForwardReturnRule

SQRT2 = math.sqrt(2.0)


class Tick(NamedTuple):
    log_price: float
    vol: float
    ret: float = 0.0


def labeler_of(horizon: int, clip: float) -> DelayedLabeler:
    return DelayedLabeler(ForwardReturnRule(horizon, clip))


def push(
    labeler: DelayedLabeler,
    index: int,
    log_price: float,
    x: tuple[float, ...] | None,
    scale: float,
    offset: int,
    ts_ms: int,
) -> Example | None:
    """The return task's labels: the tick carries this event's log price and volatility."""
    return labeler.push(index, Tick(log_price, scale), x, offset, ts_ms)


def test_labels_by_hand_on_a_tiny_series() -> None:
    labeler = labeler_of(2, 10.0)
    log_prices = [0.00, 0.01, 0.03, 0.02, 0.05]
    scales = [0.01, 0.01, 0.02, 0.01, 0.01]
    out = []
    for i, (lp, scale) in enumerate(zip(log_prices, scales, strict=True)):
        out.append(push(labeler, i, lp, (float(i), -1.0), scale, offset=100 + i, ts_ms=1000 * i))
    assert out[:2] == [None, None]
    # t=0 matures at 2: (0.03 - 0.00) / (0.01 * sqrt 2) = 3 / sqrt 2
    # t=1 matures at 3: (0.02 - 0.01) / (0.01 * sqrt 2) = 1 / sqrt 2
    # t=2 matures at 4: (0.05 - 0.03) / (0.02 * sqrt 2) = 1 / sqrt 2 (its own scale, 0.02)
    expected = [
        Example((0.0, -1.0), 3 / SQRT2, 0, 100, 0),
        Example((1.0, -1.0), 1 / SQRT2, 1, 101, 1000),
        Example((2.0, -1.0), 1 / SQRT2, 2, 102, 2000),
    ]
    for got, want in zip(out[2:], expected, strict=True):
        assert isinstance(got, Example)
        assert got.x == want.x
        assert (got.index, got.offset, got.ts_ms) == (want.index, want.offset, want.ts_ms)
        assert got.y == pytest.approx(want.y)
    assert labeler.pending == 2


def test_warmup_events_form_no_examples_but_label_later_ones() -> None:
    labeler = labeler_of(1, 10.0)
    assert push(labeler, 0, 0.0, None, 0.0, 0, 0) is None  # warm-up: no scale needed
    assert labeler.pending == 0
    assert push(labeler, 1, 0.1, None, 0.0, 1, 1) is None
    assert push(labeler, 2, 0.2, (1.0,), 0.1, 2, 2) is None
    assert labeler.pending == 1
    example = push(labeler, 3, 0.25, None, 0.0, 3, 3)
    assert example.index == 2
    assert example.y == pytest.approx(0.5)
    assert labeler.pending == 0


def test_labels_are_clipped() -> None:
    labeler = labeler_of(1, 3.0)
    push(labeler, 0, 0.0, (0.0,), 0.01, 0, 0)
    assert push(labeler, 1, 1.0, (0.0,), 0.01, 1, 1).y == 3.0
    assert push(labeler, 2, -1.0, (0.0,), 0.01, 2, 2).y == -3.0


def test_indices_must_be_consecutive() -> None:
    labeler = labeler_of(2, 3.0)
    push(labeler, 7, 0.0, (0.0,), 0.01, 0, 0)
    with pytest.raises(ValueError, match="index 9 does not follow"):
        push(labeler, 9, 0.0, (0.0,), 0.01, 0, 0)


def test_arguments_validated() -> None:
    with pytest.raises(ValueError, match="horizon"):
        labeler_of(0, 1.0)
    with pytest.raises(ValueError, match="clip"):
        labeler_of(1, 0.0)
    with pytest.raises(ValueError, match="vol must be positive"):
        push(labeler_of(1, 1.0), 0, 0.0, (1.0,), 0.0, 0, 0)


@given(
    st.integers(1, 8),
    st.lists(st.tuples(st.floats(-1, 1), st.booleans()), min_size=1, max_size=60),
)
@settings(max_examples=100)
def test_each_featured_event_is_labelled_exactly_once_h_events_later(
    horizon: int, events: list[tuple[float, bool]]
) -> None:
    labeler = labeler_of(horizon, 100.0)
    labelled = []
    for i, (lp, has_x) in enumerate(events):
        example = push(labeler, i, lp, (lp,) if has_x else None, 0.5, i, i)
        assert labeler.pending <= horizon
        if example is not None:
            assert example.index == i - horizon
            assert example.x == (events[i - horizon][0],)
            labelled.append(example.index)
    n = len(events)
    assert labelled == [i for i, (_, has_x) in enumerate(events) if has_x and i + horizon < n]


def test_pickle_mid_stream_continues_identically() -> None:
    labeler = labeler_of(5, 10.0)
    series = [(i, math.sin(i / 7.0) * 0.1, (float(i),) if i > 3 else None) for i in range(60)]
    for i, lp, x in series[:20]:
        push(labeler, i, lp, x, 0.02, i, i)
    copy = stored(labeler)
    assert copy.pending == labeler.pending == 5
    for i, lp, x in series[20:]:
        assert push(copy, i, lp, x, 0.02, i, i) == push(labeler, i, lp, x, 0.02, i, i)
    with pytest.raises(ValueError, match="does not follow"):
        push(copy, 100, 0.0, None, 0.02, 0, 0)  # the copy remembers where it was


def test_a_labeler_pickled_before_policy_tasks_continues_with_the_return_rule() -> None:
    # Before policy tasks the labeler had these slots and made the return labels itself;
    # its pickle's state is (None, slots).
    labeler = labeler_of(2, 10.0)
    push(labeler, 0, 0.0, (0.0,), 0.01, 0, 0)
    push(labeler, 1, 0.01, (1.0,), 0.02, 1, 1)
    inv = 1.0 / (math.sqrt(2.0) * 0.01), 1.0 / (math.sqrt(2.0) * 0.02)
    legacy = {
        "_inv_sqrt_h": 1.0 / math.sqrt(2.0),
        "_last_index": 1,
        "_pending": deque([(0, 0.0, (0.0,), inv[0], 0, 0), (1, 0.01, (1.0,), inv[1], 1, 1)]),
        "clip": 10.0,
        "horizon": 2,
    }
    old = DelayedLabeler.__new__(DelayedLabeler)
    old.__setstate__((None, legacy))
    for i, lp in ((2, 0.03), (3, 0.02), (4, 0.05)):
        assert push(old, i, lp, (float(i),), 0.01, i, i) == push(
            labeler, i, lp, (float(i),), 0.01, i, i
        )
