from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptd.daemon.core.schema import (
    MAX_STREAM_CHARS,
    MAX_TS_MS,
    SCHEMA_VERSION,
    EventDecoder,
    MarketEvent,
    Reason,
    Rejection,
    _classify,
)

DECODER = EventDecoder()
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def payload(**fields: object) -> bytes:
    base: dict[str, object] = {"stream": "BTC-USD@coinbase", "ts": T0, "price": 37000.5}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def reason_of(value: bytes | None, key: bytes | None = None) -> Reason:
    result = DECODER.decode(value, key)
    assert isinstance(result, Rejection), result
    assert result.detail  # always something a person can read
    return result.reason


# ---- valid events -------------------------------------------------------------------------


def test_minimal_event_decodes_with_defaults() -> None:
    event = DECODER.decode(payload())
    assert event == MarketEvent("BTC-USD@coinbase", T0, 37000.5)
    assert (event.size, event.bid, event.ask, event.volume) == (None, None, None, None)


def test_full_event_with_version_extras_and_integer_price() -> None:
    value = payload(v=1, price=37000, size=0.5, bid=36999.5, ask=37000.5, volume=0, extra=[1, {}])
    event = DECODER.decode(value, b"BTC-USD@coinbase")
    assert event == MarketEvent("BTC-USD@coinbase", T0, 37000.0, 0.5, 36999.5, 37000.5, 0.0)
    assert type(event.price) is float


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T22:13:20.123Z", T0 + 123),
        ("2023-11-14T23:13:20.5+01:00", T0 + 500),
        ("2023-11-14T22:13:20", T0),  # naive means UTC
        ("2023-11-14 22:13:20.000999+00:00", T0),  # sub-millisecond part is truncated
        ("1970-01-01", 0),
        ("2200-12-31T23:59:59.999Z", MAX_TS_MS - 1),
    ],
)
def test_iso_timestamps(ts: str, expected: int) -> None:
    assert DECODER.decode(payload(ts=ts)).ts_ms == expected


def test_timestamp_bounds_are_inclusive_exclusive() -> None:
    assert DECODER.decode(payload(ts=0)).ts_ms == 0
    assert DECODER.decode(payload(ts=MAX_TS_MS - 1)).ts_ms == MAX_TS_MS - 1
    assert reason_of(payload(ts=MAX_TS_MS)) is Reason.BAD_TIMESTAMP


def test_bid_equal_ask_is_not_crossed() -> None:
    assert DECODER.decode(payload(bid=10.0, ask=10.0)).bid == 10.0


def test_stream_of_max_length_and_unicode_key() -> None:
    stream = "é" * MAX_STREAM_CHARS
    event = DECODER.decode(payload(stream=stream), stream.encode())
    assert event.stream == stream


# ---- every reason, with a real payload ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, Reason.EMPTY),
        (b"", Reason.EMPTY),
        (b"{" + b" " * 70_000 + b"}", Reason.OVERSIZE),
        (b'{"stream": "\xff\xfe", "ts": 1, "price": 1}', Reason.UNDECODABLE),
        (b"\xc3\x28", Reason.UNDECODABLE),
        # Issue 12, finding 6: invalid UTF-8 in a field the schema does not know was accepted.
        (b'{"stream": "X", "ts": 1, "price": 1, "note": "\xff"}', Reason.UNDECODABLE),
        (b'{"stream": "X", "ts": 1, "price": 1, "n\xc3\x28": 2}', Reason.UNDECODABLE),
        (b'{"stream": "X", "ts": 1, "price": 1, "note": "\xed\xa0\x80"}', Reason.UNDECODABLE),
        (b'{"stream": "X", "ts": 1, "price": 1', Reason.INVALID_JSON),
        (b'{"stream": "X"} trailing', Reason.INVALID_JSON),
        (b"\xef\xbb\xbf{}", Reason.INVALID_JSON),  # a UTF-8 byte order mark is not JSON
        (b"[" * 100_000 + b"]" * 100_000, Reason.OVERSIZE),
        (b"[" * 30_000 + b"]" * 30_000, Reason.INVALID_JSON),  # nested too deeply
        (b'{"stream": "X\\ud800", "ts": 1, "price": 1}', Reason.INVALID_JSON),  # lone surrogate
        (b'{"stream": "X", "ts": 1, "price": 1, "x": NaN}', Reason.INVALID_JSON),  # not JSON
        (b"[1, 2]", Reason.NOT_OBJECT),
        (b'"text"', Reason.NOT_OBJECT),
        (b"null", Reason.NOT_OBJECT),
        (payload(stream=...), Reason.MISSING_FIELD),
        (payload(ts=...), Reason.MISSING_FIELD),
        (payload(price=...), Reason.MISSING_FIELD),
        (payload(price="NaN"), Reason.WRONG_TYPE),
        (payload(price=None), Reason.WRONG_TYPE),
        (payload(price=True), Reason.WRONG_TYPE),
        (payload(size="1"), Reason.WRONG_TYPE),
        (payload(bid=[1]), Reason.WRONG_TYPE),
        (payload(stream=5), Reason.WRONG_TYPE),
        (payload(stream=""), Reason.WRONG_TYPE),
        (payload(stream="x" * (MAX_STREAM_CHARS + 1)), Reason.WRONG_TYPE),
        (payload(v=2), Reason.UNKNOWN_VERSION),
        (b'{"v": 2, "foo": 1}', Reason.UNKNOWN_VERSION),
        (payload(v="1"), Reason.UNKNOWN_VERSION),
        (payload(v=1.0), Reason.UNKNOWN_VERSION),
        (payload(v=True), Reason.UNKNOWN_VERSION),
        (payload(v=None), Reason.UNKNOWN_VERSION),
        (payload(ts="yesterday"), Reason.BAD_TIMESTAMP),
        (payload(ts=True), Reason.BAD_TIMESTAMP),
        (payload(ts=1.7e12), Reason.BAD_TIMESTAMP),
        (payload(ts=None), Reason.BAD_TIMESTAMP),
        (payload(ts=-62_135_596_800_001), Reason.BAD_TIMESTAMP),  # before year 1
        (payload(ts=10**30), Reason.BAD_TIMESTAMP),
        (payload(ts="2201-01-01T00:00:00Z"), Reason.BAD_TIMESTAMP),
        (payload(ts="0001-01-01T00:00:00+01:00"), Reason.BAD_TIMESTAMP),
        (payload(price=math.nan), Reason.NON_FINITE),  # json.dumps writes the NaN token
        (payload(price=math.inf), Reason.NON_FINITE),
        (payload(price=-math.inf), Reason.NON_FINITE),
        (b'{"stream": "X", "ts": 1, "price": 1e400}', Reason.NON_FINITE),
        (b'{"stream": "X", "ts": 1, "price": 1' + b"0" * 400 + b"}", Reason.NON_FINITE),
        (payload(size=math.nan), Reason.NON_FINITE),
        (payload(ask=math.inf), Reason.NON_FINITE),
        (payload(price=0), Reason.NON_POSITIVE),
        (payload(price=-0.0), Reason.NON_POSITIVE),
        (payload(price=-3.5), Reason.NON_POSITIVE),
        (payload(bid=0.0), Reason.NON_POSITIVE),
        (payload(ask=-1), Reason.NON_POSITIVE),
        (payload(size=-0.1), Reason.NEGATIVE_QUANTITY),
        (payload(volume=-5), Reason.NEGATIVE_QUANTITY),
        (payload(bid=10.5, ask=10.0), Reason.CROSSED_QUOTE),
    ],
)
def test_each_rejection_reason(value: bytes | None, reason: Reason) -> None:
    assert reason_of(value) is reason


def test_invalid_iso_with_other_problems_still_classified() -> None:
    # the slow path (taken by ISO times) applies every value check too
    assert reason_of(payload(ts="2023-11-14T22:13:20Z", price=-1)) is Reason.NON_POSITIVE
    assert reason_of(payload(ts="2023-11-14T22:13:20Z", bid=2, ask=1)) is Reason.CROSSED_QUOTE


def test_first_problem_in_a_fixed_order_whatever_the_field_order() -> None:
    for value in (
        b'{"price": "x", "ts": -62135596800001, "stream": "S"}',
        b'{"stream": "S", "ts": -62135596800001, "price": "x"}',
    ):
        assert reason_of(value) is Reason.BAD_TIMESTAMP
    assert reason_of(b'{"price": -1, "size": "x", "ts": 1, "stream": "S"}') is Reason.WRONG_TYPE
    assert reason_of(b'{"bid": 0, "price": -1, "ts": 1, "stream": "S"}') is Reason.NON_POSITIVE


def test_key_mismatch_only_when_key_given() -> None:
    value = payload()
    assert reason_of(value, b"ETH-USD@coinbase") is Reason.KEY_MISMATCH
    assert reason_of(value, b"") is Reason.KEY_MISMATCH
    assert reason_of(value, b"\xff") is Reason.KEY_MISMATCH
    assert isinstance(DECODER.decode(value, None), MarketEvent)
    assert isinstance(DECODER.decode(value, b"BTC-USD@coinbase"), MarketEvent)
    # also on the slow (ISO time) path
    assert reason_of(payload(ts="2023-11-14T22:13:20Z"), b"other") is Reason.KEY_MISMATCH


def test_invalid_payload_reports_its_own_reason_before_key_mismatch() -> None:
    assert reason_of(payload(price=-1), b"other") is Reason.NON_POSITIVE


def test_decoder_owned_reasons_and_values() -> None:
    assert Reason.OUT_OF_ORDER.value == "out_of_order"
    assert all(r.value.islower() and " " not in r.value for r in Reason)
    assert len({r.value for r in Reason}) == len(Reason)


def test_oversize_is_checked_before_decoding() -> None:
    small = EventDecoder(max_bytes=64)
    value = payload(stream="S" * 60)
    assert len(value) > 64
    assert small.decode(value).reason is Reason.OVERSIZE
    assert isinstance(EventDecoder(max_bytes=len(value)).decode(value), MarketEvent)


def test_wrong_type_detail_names_the_field() -> None:
    assert DECODER.decode(payload(price="x")).detail == "Expected `float`, got `str` - at `$.price`"


def test_max_bytes_validated() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        EventDecoder(max_bytes=0)


def test_encode_is_canonical_v1() -> None:
    event = MarketEvent("S", T0, 1.5, volume=3.0)
    assert json.loads(DECODER.encode(event)) == {
        "v": SCHEMA_VERSION,
        "stream": "S",
        "ts": T0,
        "price": 1.5,
        "volume": 3.0,
    }


# ---- properties -----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
non_negative = st.floats(min_value=0.0, allow_infinity=False)
streams = st.text(min_size=1, max_size=MAX_STREAM_CHARS).filter(
    lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
)


@st.composite
def valid_events(draw: st.DrawFn) -> MarketEvent:
    bid = draw(st.none() | positive)
    ask = draw(st.none() | positive)
    if bid is not None and ask is not None and bid > ask:
        bid, ask = ask, bid
    return MarketEvent(
        stream=draw(streams),
        ts_ms=draw(st.integers(0, MAX_TS_MS - 1)),
        price=draw(positive),
        size=draw(st.none() | non_negative),
        bid=bid,
        ask=ask,
        volume=draw(st.none() | non_negative),
    )


FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
"""``make fuzz`` sets it (100,000); ``make test`` runs the fuzzers with a few hundred."""


def fuzz(default: int) -> settings:
    return settings(max_examples=FUZZ_EXAMPLES or default, deadline=None)


@given(st.binary(max_size=300))
@fuzz(500)
def test_decode_never_raises_on_arbitrary_bytes(value: bytes) -> None:
    result = DECODER.decode(value, value[:8] or None)
    assert isinstance(result, MarketEvent | Rejection)
    if isinstance(result, Rejection):
        assert isinstance(result.reason, Reason)


MISSING = object()
scalars = (
    st.none() | st.booleans() | st.floats() | st.integers(-(10**20), 10**20) | st.text(max_size=8)
)
odd_values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=3), scalars)
iso_times = st.sampled_from(["2023-11-14T22:13:20Z", "2023-11-14", "20231114T221320+0100", "x"])


numbers = st.floats() | st.integers(-(10**20), 10**20) | st.sampled_from([0, 0.0, -0.0, -1])


@st.composite
def mostly_valid_objects(draw: st.DrawFn) -> dict[str, object]:
    """A valid event's fields with zero to two of them broken, so that every branch is hit."""
    obj: dict[str, object] = {"stream": draw(st.sampled_from(["S", "T"]))}
    event = draw(valid_events())
    obj["ts"] = draw(st.just(event.ts_ms) | iso_times)
    for name in ("price", "size", "bid", "ask", "volume"):
        if getattr(event, name) is not None:
            obj[name] = getattr(event, name)
    if draw(st.booleans()):
        obj["v"] = 1
    obj["x"] = draw(odd_values)
    names = ["v", "stream", "ts", "price", "size", "bid", "ask", "volume"]
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        broken = draw(st.just(MISSING) | odd_values | numbers)
        if broken is MISSING:
            obj.pop(name, None)
        else:
            obj[name] = broken
    return obj


def strict_json(obj: object) -> bool:
    try:
        json.dumps(obj, allow_nan=False)
    except ValueError:
        return False
    return True


@given(mostly_valid_objects(), st.booleans())
@fuzz(1000)
def test_fast_and_slow_paths_agree(obj: dict[str, object], use_key: bool) -> None:
    """The typed decode and the Python classifier must judge every object alike."""
    value = json.dumps(obj).encode()
    result = DECODER.decode(value, b"S" if use_key else None)
    reference = _classify(obj)
    if isinstance(reference, MarketEvent):
        if not strict_json(obj):
            # a non-finite number in an ignored field: not JSON, so not accepted
            assert result.reason is Reason.INVALID_JSON
        elif use_key and reference.stream != "S":
            assert result.reason is Reason.KEY_MISMATCH
        else:
            assert result == reference
    else:
        assert isinstance(result, Rejection)
        assert result.reason is reference.reason, (result, reference)


@given(valid_events())
@settings(max_examples=300)
def test_encode_decode_round_trip(event: MarketEvent) -> None:
    value = DECODER.encode(event)
    assert DECODER.decode(value, event.stream.encode()) == event


DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"


def test_documented_examples_and_reasons() -> None:
    text = DOC.read_text()
    valid = text.split("### Examples of valid events")[1].split("## Kafka key")[0]
    blocks = re.findall(r"```json\n(.*?)```", valid, flags=re.S)
    assert len(blocks) == 3
    for block in blocks:
        assert isinstance(DECODER.decode(block.encode()), MarketEvent), block
    for reason in Reason:
        assert f"| `{reason.value}`" in text, reason


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        (-1, -1),
        ("1969-12-31T23:59:59Z", -1000),
        ("1929-10-29T00:00:00Z", -1_267_833_600_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000),
        (-62_135_596_800_000, -62_135_596_800_000),
        ("2200-12-31T23:59:59.999Z", 7_289_654_399_999),
    ],
)
def test_times_from_year_1_to_2200_are_valid(ts: int | str, ms: int) -> None:
    """Long market histories start well before 1970: negative epoch ms are event times."""
    event = EventDecoder().decode(payload(ts=ts))
    assert isinstance(event, MarketEvent) and event.ts_ms == ms
