"""Decode and validate one Kafka record value: input schema version 1 (see docs/schema.md).

The hot path is one typed ``msgspec`` decode plus a few float comparisons. Anything that
fails it is classified on a slow path that never raises: every input gives either a
:class:`MarketEvent` or a :class:`Rejection` naming a machine-readable :class:`Reason`.

>>> decoder = EventDecoder()
>>> decoder.decode(b'{"stream": "BTC-USD@coinbase", "ts": 1700000000000, "price": 37000.5}')
MarketEvent(stream='BTC-USD@coinbase', ts_ms=1700000000000, price=37000.5)
>>> decoder.decode(b'{"stream": "X", "ts": "2023-11-14T22:13:20Z", "price": 1}').ts_ms
1700000000000
>>> reason, detail = decoder.decode(b'{"stream": "X", "ts": 1700000000000, "price": -1}')
>>> reason, detail
(<Reason.NON_POSITIVE: 'non_positive'>, 'Expected `float` > 0, got -1.0 - at `$.price`')
>>> decoder.decode(b'{"v": 2, "foo": 1}').reason
<Reason.UNKNOWN_VERSION: 'unknown_version'>
>>> decoder.encode(MarketEvent("X", 1700000000000, 2.5, bid=2.4, ask=2.6))
b'{"v":1,"stream":"X","ts":1700000000000,"price":2.5,"bid":2.4,"ask":2.6}'
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

import msgspec

SCHEMA_VERSION: int = 1
MAX_STREAM_CHARS = 200
# Event times must fall in the years 1..2200 (UTC): [0001-01-01T00:00Z, 2201-01-01T00:00Z)
# in epoch ms, negative before 1970 (long market histories start well before it).
MIN_TS_MS = -62_135_596_800_000
MAX_TS_MS = 7_289_654_400_000  # exclusive

_INF = math.inf
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_JSON_TYPES = {str: "str", int: "int", float: "float", bool: "bool", list: "array", dict: "object"}


# The typed decode checks these bounds in C; msgspec's JSON never yields NaN or infinity, so
# only a crossed quote is left for Python on the fast path. Constructing a MarketEvent in
# Python does not check them: _problem() does that on the slow path.
_Positive = Annotated[float, msgspec.Meta(gt=0.0)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]


class Reason(StrEnum):
    """Why an input record was dead-lettered (the values are stable, snake_case)."""

    EMPTY = "empty_payload"
    OVERSIZE = "oversize"
    UNDECODABLE = "undecodable"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_VERSION = "unknown_version"
    BAD_TIMESTAMP = "bad_timestamp"
    NON_FINITE = "non_finite"
    NON_POSITIVE = "non_positive"
    NEGATIVE_QUANTITY = "negative_quantity"
    CROSSED_QUOTE = "crossed_quote"
    KEY_MISMATCH = "key_mismatch"
    OUT_OF_ORDER = "out_of_order"


class MarketEvent(
    msgspec.Struct,
    frozen=True,
    gc=False,
    tag_field="v",
    tag=SCHEMA_VERSION,
    omit_defaults=True,
    repr_omit_defaults=True,
):
    """One valid market event. On the wire ``ts_ms`` is called ``ts`` and ``"v": 1`` may lead.

    The decoder guarantees: ``price`` finite and > 0; ``size``/``volume`` finite and >= 0;
    ``bid``/``ask`` finite and > 0 with ``bid <= ask``; ``ts_ms`` in [MIN_TS_MS, MAX_TS_MS).
    """

    stream: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_STREAM_CHARS)]
    ts_ms: Annotated[int, msgspec.Meta(ge=MIN_TS_MS, lt=MAX_TS_MS)] = msgspec.field(name="ts")
    price: _Positive
    size: _NonNegative | None = None
    bid: _Positive | None = None
    ask: _Positive | None = None
    volume: _NonNegative | None = None


class Rejection(NamedTuple):
    """A record that is not a valid event: the reason, and a human-readable detail."""

    reason: Reason
    detail: str


class EventDecoder:
    """Turn record values into :class:`MarketEvent` or :class:`Rejection`; never raises.

    Parameters
    ----------
    max_bytes
        Payloads longer than this are rejected as ``oversize`` before any decoding
        (``KafkaSettings.max_message_bytes``).
    """

    __slots__ = ("_decoder", "_encoder", "max_bytes")

    def __init__(self, max_bytes: int = 65536) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self._decoder = msgspec.json.Decoder(MarketEvent)
        self._encoder = msgspec.json.Encoder()

    def decode(self, value: bytes | None, key: bytes | None = None) -> MarketEvent | Rejection:
        """Decode one record value; ``key`` (the record key, the UTF-8 stream id) is checked
        against the payload's stream unless it is None."""
        if not value:
            return Rejection(Reason.EMPTY, "empty payload")
        if len(value) > self.max_bytes:
            return Rejection(Reason.OVERSIZE, f"{len(value)} bytes > max {self.max_bytes}")
        if not value.isascii():  # rare in market feeds: ASCII is valid UTF-8
            try:
                # msgspec skips an unknown field without checking its UTF-8.
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                return Rejection(Reason.UNDECODABLE, f"not UTF-8: {exc}")
        try:
            event = self._decoder.decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            result = _decode_slowly(value)
        else:
            bid = event.bid
            if bid is not None and event.ask is not None and bid > event.ask:
                return _crossed(bid, event.ask)
            if key is None or key == event.stream.encode():
                return event
            return _key_mismatch(key, event.stream)
        if key is None or type(result) is not MarketEvent or key == result.stream.encode():
            return result
        return _key_mismatch(key, result.stream)

    def encode(self, event: MarketEvent) -> bytes:
        """The canonical v1 JSON of a valid event (``ts`` as epoch ms, absent fields omitted)."""
        return self._encoder.encode(event)


def _problem(event: MarketEvent) -> Rejection | None:
    """Every value check of an event built on the slow path (which can bring NaN/Infinity)."""
    ts = event.ts_ms
    if not MIN_TS_MS <= ts < MAX_TS_MS:
        return _ts_out_of_range(ts)
    price = event.price
    if not 0.0 < price < _INF:
        return _bad_number(price, "price", strict=True)
    size = event.size
    if size is not None and not 0.0 <= size < _INF:
        return _bad_number(size, "size", strict=False)
    volume = event.volume
    if volume is not None and not 0.0 <= volume < _INF:
        return _bad_number(volume, "volume", strict=False)
    bid = event.bid
    if bid is not None and not 0.0 < bid < _INF:
        return _bad_number(bid, "bid", strict=True)
    ask = event.ask
    if ask is not None:
        if not 0.0 < ask < _INF:
            return _bad_number(ask, "ask", strict=True)
        if bid is not None and bid > ask:
            return _crossed(bid, ask)
    return None


def _crossed(bid: float, ask: float) -> Rejection:
    return Rejection(Reason.CROSSED_QUOTE, f"bid {bid!r} > ask {ask!r}")


def _key_mismatch(key: bytes, stream: str) -> Rejection:
    shown = bytes(key[: MAX_STREAM_CHARS * 4])
    return Rejection(Reason.KEY_MISMATCH, f"record key {shown!r} != stream {stream!r}")


def _bad_number(x: float, name: str, strict: bool) -> Rejection:
    where = f" - at `$.{name}`"
    if not math.isfinite(x):
        return Rejection(Reason.NON_FINITE, f"Expected a finite number, got {x!r}{where}")
    if strict:
        return Rejection(Reason.NON_POSITIVE, f"Expected `float` > 0, got {x!r}{where}")
    return Rejection(Reason.NEGATIVE_QUANTITY, f"Expected `float` >= 0, got {x!r}{where}")


# ---- slow path: only records that failed the typed decode get here -----------------------


def _decode_slowly(value: bytes) -> MarketEvent | Rejection:
    """Untyped parse, then classification. When msgspec cannot parse the value, the standard
    library tries, as it also reads NaN, Infinity and numbers too large for a float: that only
    serves to name a better reason (``non_finite``), never to accept the value."""
    try:
        return _classify(msgspec.json.decode(value))
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError) as e:
        error = str(e)
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(Reason.UNDECODABLE, f"not UTF-8: {exc}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejection(Reason.INVALID_JSON, f"{error} ({exc})")
    result = _classify(obj)
    if type(result) is MarketEvent:
        return Rejection(Reason.INVALID_JSON, error)
    return result


def _classify(obj: Any) -> MarketEvent | Rejection:
    if type(obj) is not dict:
        return Rejection(Reason.NOT_OBJECT, f"Expected `object`, got `{_json_type(obj)}`")
    version = obj.get("v", SCHEMA_VERSION)
    if type(version) is not int or version != SCHEMA_VERSION:
        return Rejection(
            Reason.UNKNOWN_VERSION, f"schema version {version!r} is not {SCHEMA_VERSION} - at `$.v`"
        )
    for name in ("stream", "ts", "price"):
        if name not in obj:
            return Rejection(Reason.MISSING_FIELD, f"Object missing required field `{name}`")
    stream = obj["stream"]
    if type(stream) is not str:
        return _wrong_type("str", stream, "stream")
    if not 1 <= len(stream) <= MAX_STREAM_CHARS:
        return Rejection(
            Reason.WRONG_TYPE,
            f"Expected `str` of length 1..{MAX_STREAM_CHARS}, got {len(stream)} - at `$.stream`",
        )
    ts = _timestamp_ms(obj["ts"])
    if type(ts) is Rejection:
        return ts
    numbers: dict[str, float | None] = {}
    for name in ("price", "size", "bid", "ask", "volume"):
        raw = obj.get(name)
        if raw is None:
            if name == "price":
                return _wrong_type("float", raw, name)
            numbers[name] = None
        elif type(raw) is float:
            numbers[name] = raw
        elif type(raw) is int:
            try:
                numbers[name] = float(raw)
            except OverflowError:
                numbers[name] = _INF if raw > 0 else -_INF
        else:
            return _wrong_type("float", raw, name)
    event = MarketEvent(stream, ts, **numbers)  # type: ignore[arg-type]
    return _problem(event) or event


def _timestamp_ms(raw: Any) -> int | Rejection:
    if type(raw) is int:
        return raw if MIN_TS_MS <= raw < MAX_TS_MS else _ts_out_of_range(raw)
    if type(raw) is not str:
        return Rejection(
            Reason.BAD_TIMESTAMP,
            f"Expected epoch ms `int` or ISO-8601 `str`, got `{_json_type(raw)}` - at `$.ts`",
        )
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return Rejection(Reason.BAD_TIMESTAMP, f"not an ISO-8601 time: {raw[:64]!r} - at `$.ts`")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        ms = (when - _EPOCH) // _MS
    except OverflowError:  # an offset pushing a year-1 or year-9999 time out of range
        return Rejection(Reason.BAD_TIMESTAMP, f"time out of range: {raw[:64]!r} - at `$.ts`")
    return ms if MIN_TS_MS <= ms < MAX_TS_MS else _ts_out_of_range(ms)


def _ts_out_of_range(ms: int) -> Rejection:
    return Rejection(Reason.BAD_TIMESTAMP, f"epoch ms {ms} outside years 1..2200 - at `$.ts`")


def _wrong_type(expected: str, raw: Any, name: str) -> Rejection:
    return Rejection(
        Reason.WRONG_TYPE, f"Expected `{expected}`, got `{_json_type(raw)}` - at `$.{name}`"
    )


def _json_type(raw: Any) -> str:
    return "null" if raw is None else _JSON_TYPES.get(type(raw), type(raw).__name__)
