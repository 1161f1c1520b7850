"""The dead-letter and shift records the daemon writes to Kafka, encoded (pure: the policy
message has its own module, :mod:`.policy`).

>>> from adaptd.daemon.core.schema import Reason
>>> dl = DeadLetter(Reason.INVALID_JSON, "bad", "in", 0, 7, 0, b"k", b"{oops")
>>> msgspec.json.decode(dead_letter_message(dl, 65536)[1])["source"]["offset"]
7
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec

from .. import __version__
from .effects import DeadLetter, ShiftEvent
from .schema import SCHEMA_VERSION

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "MAX_KEY_BYTES",
    "SHIFT_SCHEMA",
    "dead_letter_message",
    "shift_message",
]

SHIFT_SCHEMA = "adaptd.shift/v1"
DEAD_LETTER_SCHEMA = "adaptd.deadletter/v1"

_encode = msgspec.json.Encoder().encode


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


MAX_KEY_BYTES = 1024
"""A dead letter's Kafka key is the source record's key up to this size, else its SHA-256
(hex): the same key still lands in the same partition, and a huge key cannot inflate the
dead letter. The body keeps at most this many of the key's bytes too."""
MAX_DETAIL_CHARS = 2048
"""A dead letter's ``detail`` is cut to this many characters."""
_FRAMING_BYTES = 512
"""Room left for the Kafka record's own framing (lengths, offsets, CRC, attributes)."""

Headers = list[tuple[str, bytes]]


def dead_letter_message(
    dl: DeadLetter, max_value_bytes: int, max_record_bytes: int = 1_000_000
) -> tuple[bytes | None, bytes, Headers]:
    """(key, value, headers) of the dead-letter record, sized to fit ``max_record_bytes``
    whatever the source record was.

    The source value is kept up to ``max_value_bytes`` (the input limit), the source key up
    to :data:`MAX_KEY_BYTES`, and both less when the whole record would exceed
    ``max_record_bytes``; what was cut is stated in the body (``*_truncated``, ``*_size``,
    ``*_sha256``) and in the headers (``adaptd-truncated``, and the size and SHA-256 of
    each original that was cut).

    >>> from adaptd.daemon.core.schema import Reason
    >>> dl = DeadLetter(Reason.KEY_MISMATCH, "no", "in", 0, 9, 0, b"k" * 3_000_000, b"{}")
    >>> key, value, headers = dead_letter_message(dl, 65536, 100_000)
    >>> len(key), len(value) < 100_000, dict(headers)["adaptd-key-bytes"]
    (64, True, b'3000000')
    """
    key, value = dl.key, dl.value
    record_key = key
    if key is not None and len(key) > MAX_KEY_BYTES:
        record_key = hashlib.sha256(key).hexdigest().encode()
    body: dict[str, Any] = {
        "schema": DEAD_LETTER_SCHEMA,
        "reason": str(dl.reason),
        "detail": dl.detail[:MAX_DETAIL_CHARS],
        "source": {
            "topic": dl.topic,
            "partition": dl.partition,
            "offset": dl.offset,
            "timestamp_ms": dl.timestamp_ms,
        },
        "key": None,
        "key_truncated": False,
        "key_size": None if key is None else len(key),
        "key_sha256": None,
        "value": None,
        "value_truncated": False,
        "value_size": None if value is None else len(value),
        "value_sha256": None,
        "schema_version": SCHEMA_VERSION,
        "daemon_version": __version__,
    }
    headers: Headers = [("adaptd-reason", str(dl.reason).encode())]
    cut: list[str] = []
    # What the body and headers cost with both hashes and sizes in, before the payloads.
    for name, data in (("key", key), ("value", value)):
        if data is not None:
            body[f"{name}_sha256"] = hashlib.sha256(data).hexdigest()
            headers += [
                (f"adaptd-{name}-bytes", str(len(data)).encode()),
                (f"adaptd-{name}-sha256", body[f"{name}_sha256"].encode()),
            ]
    headers.append(("adaptd-truncated", b"key,value"))
    fixed = len(_encode(body)) + sum(len(k) + len(v) for k, v in headers)
    room = max_record_bytes - _FRAMING_BYTES - fixed - len(record_key or b"")
    for name, data, limit in (("key", key, MAX_KEY_BYTES), ("value", value, max_value_bytes)):
        if data is None:
            continue
        keep = max(0, min(len(data), limit, room * 3 // 4 - 3))  # base64: 4 chars per 3 bytes
        body[name] = _b64(data[:keep])
        room -= 4 * ((keep + 2) // 3)
        if keep < len(data):
            body[f"{name}_truncated"] = True
            cut.append(name)
        else:
            body[f"{name}_sha256"] = None  # whole: nothing to check it against
    headers = [
        (k, v)
        for k, v in headers
        if k == "adaptd-reason" or any(k.startswith(f"adaptd-{name}-") for name in cut)
    ]
    if cut:
        headers.append(("adaptd-truncated", ",".join(cut).encode()))
    return record_key, _encode(body), headers


def shift_message(ev: ShiftEvent, detected_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of the shift record, keyed by stream."""
    body = {
        "schema": SHIFT_SCHEMA,
        "id": ev.id,
        "stream": ev.stream,
        "segment": ev.segment,
        "detector": ev.shift.triggers[0] if ev.shift.triggers else "",
        "triggers": list(ev.shift.triggers),
        "index": ev.shift.index,
        "first_index": ev.shift.first_index,
        "change_index": ev.shift.change_index,
        "event_ts_ms": ev.ts_ms,
        "source": {"topic": ev.topic, "partition": ev.partition, "offset": ev.offset},
        "stats": ev.shift.stats,
        "detected_ms": detected_ms,
    }
    return ev.stream.encode(), _encode(body)
