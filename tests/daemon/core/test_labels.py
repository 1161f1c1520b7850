from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptd.daemon.core.labels import DelayedLabeler, Example

SQRT2 = math.sqrt(2.0)


def test_labels_by_hand_on_a_tiny_series() -> None:
    labeler = DelayedLabeler(horizon=2, clip=10.0)
    log_prices = [0.00, 0.01, 0.03, 0.02, 0.05]
    scales = [0.01, 0.01, 0.02, 0.01, 0.01]
    out = []
    for i, (lp, scale) in enumerate(zip(log_prices, scales, strict=True)):
        out.append(labeler.push(i, lp, (float(i), -1.0), scale, offset=100 + i, ts_ms=1000 * i))
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
    labeler = DelayedLabeler(horizon=1, clip=10.0)
    assert labeler.push(0, 0.0, None, 0.0, 0, 0) is None  # warm-up: no scale needed
    assert labeler.pending == 0
    assert labeler.push(1, 0.1, None, 0.0, 1, 1) is None
    assert labeler.push(2, 0.2, (1.0,), 0.1, 2, 2) is None
    assert labeler.pending == 1
    example = labeler.push(3, 0.25, None, 0.0, 3, 3)
    assert example.index == 2
    assert example.y == pytest.approx(0.5)
    assert labeler.pending == 0


def test_labels_are_clipped() -> None:
    labeler = DelayedLabeler(horizon=1, clip=3.0)
    labeler.push(0, 0.0, (0.0,), 0.01, 0, 0)
    assert labeler.push(1, 1.0, (0.0,), 0.01, 1, 1).y == 3.0
    assert labeler.push(2, -1.0, (0.0,), 0.01, 2, 2).y == -3.0


def test_indices_must_be_consecutive() -> None:
    labeler = DelayedLabeler(horizon=2, clip=3.0)
    labeler.push(7, 0.0, (0.0,), 0.01, 0, 0)
    with pytest.raises(ValueError, match="index 9 does not follow"):
        labeler.push(9, 0.0, (0.0,), 0.01, 0, 0)


def test_arguments_validated() -> None:
    with pytest.raises(ValueError, match="horizon"):
        DelayedLabeler(horizon=0, clip=1.0)
    with pytest.raises(ValueError, match="clip"):
        DelayedLabeler(horizon=1, clip=0.0)
    with pytest.raises(ValueError, match="scale"):
        DelayedLabeler(horizon=1, clip=1.0).push(0, 0.0, (1.0,), 0.0, 0, 0)


@given(
    st.integers(1, 8),
    st.lists(st.tuples(st.floats(-1, 1), st.booleans()), min_size=1, max_size=60),
)
@settings(max_examples=100)
def test_each_featured_event_is_labelled_exactly_once_h_events_later(
    horizon: int, events: list[tuple[float, bool]]
) -> None:
    labeler = DelayedLabeler(horizon=horizon, clip=100.0)
    labelled = []
    for i, (lp, has_x) in enumerate(events):
        example = labeler.push(i, lp, (lp,) if has_x else None, 0.5, i, i)
        assert labeler.pending <= horizon
        if example is not None:
            assert example.index == i - horizon
            assert example.x == (events[i - horizon][0],)
            labelled.append(example.index)
    n = len(events)
    assert labelled == [i for i, (_, has_x) in enumerate(events) if has_x and i + horizon < n]


def test_pickle_mid_stream_continues_identically() -> None:
    labeler = DelayedLabeler(horizon=5, clip=10.0)
    series = [(i, math.sin(i / 7.0) * 0.1, (float(i),) if i > 3 else None) for i in range(60)]
    for i, lp, x in series[:20]:
        labeler.push(i, lp, x, 0.02, i, i)
    copy = pickle.loads(pickle.dumps(labeler))
    assert copy.pending == labeler.pending == 5
    for i, lp, x in series[20:]:
        assert copy.push(i, lp, x, 0.02, i, i) == labeler.push(i, lp, x, 0.02, i, i)
    with pytest.raises(ValueError, match="does not follow"):
        copy.push(100, 0.0, None, 0.02, 0, 0)  # the copy remembers where it was
