"""The dead-letter and shift records the daemon writes to Kafka, encoded (pure: the policy
message has its own module, :mod:`.policy`).

>>> from adaptd.daemon.core.schema import Reason
>>> dl = DeadLetter(Reason.INVALID_JSON, "bad", "in", 0, 7, 0, b"k", b"{oops")
>>> msgspec.json.decode(dead_letter_message(dl, 65536)[1])["source"]["offset"]
7
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from .. import __version__
from .effects import DeadLetter, ShiftEvent
from .schema import SCHEMA_VERSION

__all__ = ["DEAD_LETTER_SCHEMA", "SHIFT_SCHEMA", "dead_letter_message", "shift_message"]

SHIFT_SCHEMA = "adaptd.shift/v1"
DEAD_LETTER_SCHEMA = "adaptd.deadletter/v1"

_encode = msgspec.json.Encoder().encode


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter_message(dl: DeadLetter, max_bytes: int) -> tuple[bytes | None, bytes]:
    """(key, value) of the dead-letter record. Oversize payloads keep their first
    ``max_bytes`` bytes (the dead letter must itself fit the broker's limit)."""
    value = dl.value
    truncated = value is not None and len(value) > max_bytes
    body: dict[str, Any] = {
        "schema": DEAD_LETTER_SCHEMA,
        "reason": str(dl.reason),
        "detail": dl.detail,
        "source": {
            "topic": dl.topic,
            "partition": dl.partition,
            "offset": dl.offset,
            "timestamp_ms": dl.timestamp_ms,
        },
        "key": _b64(dl.key),
        "value": _b64(value[:max_bytes] if truncated and value is not None else value),
        "value_truncated": truncated,
        "value_size": None if value is None else len(value),
        "schema_version": SCHEMA_VERSION,
        "daemon_version": __version__,
    }
    return dl.key, _encode(body)


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
