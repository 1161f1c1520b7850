"""The dead-letter and shift records, encoded."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptd.daemon import __version__
from adaptd.daemon.core.detection import Shift
from adaptd.daemon.core.effects import DeadLetter, ShiftEvent
from adaptd.daemon.core.records import (
    DEAD_LETTER_SCHEMA,
    SHIFT_SCHEMA,
    dead_letter_message,
    shift_message,
)
from adaptd.daemon.core.schema import SCHEMA_VERSION, Reason


def dead_letter(
    value: bytes | None = b'{"stream": "A", "price": -1}', key: bytes | None = b"A\xff\x00"
) -> DeadLetter:
    return DeadLetter(
        reason=Reason.NON_POSITIVE,
        detail="Expected `float` > 0, got -1.0 - at `$.price`",
        topic="adaptd.market",
        partition=3,
        offset=12345,
        timestamp_ms=1_700_000_000_123,
        key=key,
        value=value,
    )


def test_dead_letter_fields_and_payload_round_trip() -> None:
    dl = dead_letter()
    key, value, headers = dead_letter_message(dl, 1024)
    body = json.loads(value)
    assert key == dl.key
    assert body["schema"] == DEAD_LETTER_SCHEMA
    assert body["reason"] == "non_positive"
    assert body["detail"] == dl.detail
    assert body["source"] == {
        "topic": "adaptd.market",
        "partition": 3,
        "offset": 12345,
        "timestamp_ms": 1_700_000_000_123,
    }
    assert base64.b64decode(body["key"]) == dl.key  # binary keys survive
    assert base64.b64decode(body["value"]) == dl.value
    assert body["value_truncated"] is False
    assert body["value_size"] == len(dl.value)
    assert body["schema_version"] == SCHEMA_VERSION
    assert body["daemon_version"] == __version__
    # Nothing was cut: no hashes, only the reason in the headers.
    assert (body["key_sha256"], body["value_sha256"]) == (None, None)
    assert headers == [("adaptd-reason", b"non_positive")]


@pytest.mark.parametrize("size", [11, 500])
def test_oversize_values_are_truncated_and_flagged(size: int) -> None:
    raw = bytes(range(256)) * 2
    dl = dead_letter(value=raw[:size])
    body = json.loads(dead_letter_message(dl, 10)[1])
    assert base64.b64decode(body["value"]) == raw[:10]
    assert body["value_truncated"] is True
    assert body["value_size"] == size


def test_a_value_of_exactly_max_bytes_is_kept_whole() -> None:
    dl = dead_letter(value=b"x" * 10)
    body = json.loads(dead_letter_message(dl, 10)[1])
    assert base64.b64decode(body["value"]) == b"x" * 10
    assert body["value_truncated"] is False


def test_missing_key_and_value_are_null() -> None:
    dl = dead_letter(value=None, key=None)._replace(reason=Reason.EMPTY, detail="empty payload")
    key, value, _ = dead_letter_message(dl, 10)
    body = json.loads(value)
    assert key is None
    assert (body["key"], body["value"], body["value_size"]) == (None, None, None)
    assert body["value_truncated"] is False
    assert body["reason"] == "empty_payload"


# -- every dead letter fits the output limit -----------------------------------------------


def test_a_huge_key_is_hashed_into_the_record_key_and_cut_in_the_body() -> None:
    """The finding: a 3 MB key was copied twice into a 7.3 MB dead letter that no broker
    would take, and the partition stalled behind it."""
    big = bytes(range(256)) * 12_000  # 3,072,000 bytes
    dl = dead_letter(key=big)._replace(reason=Reason.KEY_MISMATCH)
    key, value, headers = dead_letter_message(dl, 65_536, 1_000_000)
    assert key == hashlib.sha256(big).hexdigest().encode()
    assert len(key) + len(value) + sum(len(k) + len(v) for k, v in headers) <= 1_000_000
    body = json.loads(value)
    assert big.startswith(base64.b64decode(body["key"])) and body["key_truncated"] is True
    assert (body["key_size"], body["key_sha256"]) == (len(big), key.decode())
    assert dict(headers) == {
        "adaptd-reason": b"key_mismatch",
        "adaptd-key-bytes": str(len(big)).encode(),
        "adaptd-key-sha256": key,
        "adaptd-truncated": b"key",
    }
    assert body["value_truncated"] is False  # the small value is whole


@settings(max_examples=300, deadline=None)
@given(
    key=st.none() | st.binary(max_size=4096) | st.integers(0, 400_000).map(lambda n: b"k" * n),
    value=st.none() | st.binary(max_size=4096) | st.integers(0, 3_000_000).map(b"v".__mul__),
    detail=st.text(max_size=5000),
    limit=st.integers(16_384, 2_000_000),
    max_value=st.integers(64, 1 << 20),
)
def test_every_dead_letter_fits_and_says_what_it_cut(
    key: bytes | None, value: bytes | None, detail: str, limit: int, max_value: int
) -> None:
    dl = dead_letter(key=key, value=value)._replace(detail=detail)
    record_key, encoded, headers = dead_letter_message(dl, max_value, limit)
    assert len(record_key or b"") + len(encoded) + sum(len(k) + len(v) for k, v in headers) <= (
        limit - 512
    )
    body, named = json.loads(encoded), dict(headers)
    cut = []
    for name, data in (("key", key), ("value", value)):
        if data is None:
            assert body[name] is None and body[f"{name}_size"] is None
            continue
        kept = base64.b64decode(body[name])
        assert data.startswith(kept) and body[f"{name}_size"] == len(data)
        assert body[f"{name}_truncated"] == (len(kept) < len(data))
        if body[f"{name}_truncated"]:
            cut.append(name)
            digest = hashlib.sha256(data).hexdigest()
            assert body[f"{name}_sha256"] == digest
            assert named[f"adaptd-{name}-sha256"] == digest.encode()
            assert named[f"adaptd-{name}-bytes"] == str(len(data)).encode()
    assert named.get("adaptd-truncated", b"").decode() == ",".join(cut)


def shift_event(triggers: tuple[str, ...]) -> ShiftEvent:
    shift = Shift(
        index=608,
        first_index=604,
        triggers=triggers,
        stats={"returns.z": -4.5, "scale": 0.001},
        location=590,
    )
    return ShiftEvent(
        id="BTC-USD@adaptd.market:2:9001",
        stream="BTC-USD",
        shift=shift,
        segment=3,
        topic="adaptd.market",
        partition=2,
        offset=9001,
        ts_ms=1_700_000_000_500,
        wall_time=1_700_000_001.0,
    )


def test_shift_message_fields_and_key() -> None:
    ev = shift_event(("page_hinkley:volatility", "adwin:returns"))
    key, value = shift_message(ev, detected_ms=1_700_000_001_000)
    body = json.loads(value)
    assert key == b"BTC-USD"
    assert body == {
        "schema": SHIFT_SCHEMA,
        "id": "BTC-USD@adaptd.market:2:9001",
        "stream": "BTC-USD",
        "segment": 3,
        "detector": "page_hinkley:volatility",
        "triggers": ["page_hinkley:volatility", "adwin:returns"],
        "index": 608,
        "first_index": 604,
        "change_index": 590,
        "event_ts_ms": 1_700_000_000_500,
        "source": {"topic": "adaptd.market", "partition": 2, "offset": 9001},
        "stats": {"returns.z": -4.5, "scale": 0.001},
        "detected_ms": 1_700_000_001_000,
    }


def test_a_shift_without_a_location_starts_at_its_first_firing() -> None:
    ev = shift_event(("adwin:returns",))
    ev = ev._replace(shift=ev.shift._replace(location=-1))
    assert json.loads(shift_message(ev, 0)[1])["change_index"] == 604


def test_shift_message_without_triggers_names_no_detector() -> None:
    body = json.loads(shift_message(shift_event(()), detected_ms=0)[1])
    assert body["detector"] == ""
    assert body["triggers"] == []


def test_shift_key_is_the_utf8_stream_id() -> None:
    ev = shift_event(("adwin:returns",))._replace(stream="Ölpreis-€")
    assert shift_message(ev, 0)[0] == "Ölpreis-€".encode()
