"""Episode: construction from arrays, validation, and the msgpack encoding."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adaptd.replay.episode import Episode, decode_episode, encode_episode

FINITE32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


def _kwargs(n: int = 3, d: int = 2, **over: object) -> dict[str, object]:
    kw: dict[str, object] = {
        "stream": "BTC-USD",
        "segment": 2,
        "topic": "adaptd.market",
        "partition": 4,
        "offsets": list(range(100, 100 + n)),
        "ts_ms": list(range(5000, 5000 + n)),
        "x": np.zeros((n, d)),
        "y": np.zeros(n),
    }
    kw.update(over)
    return kw


@st.composite
def episodes(draw: st.DrawFn) -> tuple[Episode, np.ndarray, np.ndarray, list[int]]:
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 12))
    x = draw(arrays(np.float32, (n, d), elements=FINITE32))
    y = draw(arrays(np.float32, (n,), elements=FINITE32))
    steps = draw(st.lists(st.integers(0, 3), min_size=n - 1, max_size=n - 1))
    offsets = [draw(st.integers(0, 2**63 - 1 - 3 * n))]
    for step in steps:
        offsets.append(offsets[-1] + step)
    names = draw(st.one_of(st.just(()), st.lists(st.text(), min_size=d, max_size=d)))
    ep = Episode.from_arrays(
        stream=draw(st.text(min_size=1)),
        segment=draw(st.integers(0, 1000)),
        topic=draw(st.from_regex(r"[a-z][a-z0-9._-]{0,30}", fullmatch=True)),
        partition=draw(st.integers(0, 1000)),
        offsets=offsets,
        ts_ms=draw(st.lists(st.integers(0, 2**62), min_size=n, max_size=n)),
        x=x,
        y=y,
        feature_names=names,
    )
    return ep, x, y, offsets


@given(episodes())
def test_encoding_round_trips_and_keeps_the_arrays(case: tuple) -> None:
    ep, x, y, offsets = case
    back = decode_episode(encode_episode(ep))
    assert back == ep
    bx, by = back.arrays()
    assert (bx.dtype, bx.shape, by.shape) == (np.float32, x.shape, y.shape)
    np.testing.assert_array_equal(bx, x)
    np.testing.assert_array_equal(by, y)
    assert (back.first_offset, back.last_offset) == (offsets[0], offsets[-1])


@given(episodes())
def test_encoding_is_compact(case: tuple) -> None:
    # The arrays as raw bytes plus the scalar fields and strings; no per-field names.
    ep = case[0]
    strings = len(ep.stream.encode()) + len(ep.topic.encode())
    strings += sum(len(s.encode()) + 5 for s in ep.feature_names)
    assert len(encode_episode(ep)) <= 4 * ep.n * (ep.d + 1) + strings + 80


def test_source_and_id_name_the_topic_partition_stream_and_offsets() -> None:
    ep = Episode.from_arrays(**_kwargs())
    assert ep.source == "adaptd.market:4:BTC-USD"
    assert ep.id == "adaptd.market:4:BTC-USD:100-102"
    assert (ep.first_ts_ms, ep.last_ts_ms, ep.n, ep.d) == (5000, 5002, 3, 2)


def test_arrays_are_read_only_views() -> None:
    x, _ = Episode.from_arrays(**_kwargs()).arrays()
    with pytest.raises(ValueError, match="read-only"):
        x[0, 0] = 1.0


def test_equal_offsets_are_allowed() -> None:
    ep = Episode.from_arrays(**_kwargs(offsets=[7, 7, 8]))
    assert (ep.first_offset, ep.last_offset) == (7, 8)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"x": np.zeros(3)}, r"x must be 2-D .* got shape \(3,\)"),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, "at least one example"),
        ({"y": np.zeros(4)}, r"y must have shape \(3,\) to match x \(3, 2\), got \(4,\)"),
        ({"y": np.zeros((3, 1))}, r"y must have shape \(3,\)"),
        ({"offsets": [1, 2]}, "offsets has 2 entries for n=3"),
        ({"ts_ms": [1, 2, 3, 4]}, "ts_ms has 4 entries for n=3"),
        ({"offsets": [5, 4, 6]}, r"non-decreasing: offsets\[1\]=4 < offsets\[0\]=5"),
        ({"x": np.array([[0, 0], [0, math.nan], [0, 0]])}, r"x must be finite .*x\[1, 1\]"),
        ({"y": np.array([0, 0, math.inf])}, r"y must be finite .*y\[2\]"),
        ({"x": np.full((3, 2), 1e39)}, "x must be finite in float32"),
        ({"x": np.array([["a", "b"]] * 3)}, "x must be numeric"),
        ({"feature_names": ["a"]}, "feature_names has 1 names for d=2"),
        ({"stream": ""}, "stream must be a non-empty"),
        ({"segment": -1}, "segment must be >= 0"),
        ({"regime": -1}, "regime must be >= 0"),
        ({"offsets": [-1, 0, 1]}, "0 <= first_offset"),
    ],
)
def test_from_arrays_names_the_problem(over: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Episode.from_arrays(**_kwargs(**over))


def test_decoding_rejects_inconsistent_or_foreign_bytes() -> None:
    ep = Episode.from_arrays(**_kwargs())
    fields = list(msgspec.structs.astuple(ep))
    fields[Episode.__struct_fields__.index("n")] = 1
    with pytest.raises(ValueError, match="x holds 24 bytes, expected 4"):
        decode_episode(msgspec.msgpack.encode(fields))
    assert decode_episode(msgspec.msgpack.encode(list(msgspec.structs.astuple(ep)))) == ep
    with pytest.raises(msgspec.DecodeError):
        decode_episode(b"not msgpack")
    with pytest.raises(msgspec.ValidationError, match="Expected `array`"):
        decode_episode(msgspec.msgpack.encode({"stream": "s"}))
