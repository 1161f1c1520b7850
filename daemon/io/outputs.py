"""Sending the daemon's records to Kafka and waiting until the brokers acknowledged every one
(acks=all), which is what lets the service commit the input offsets that caused them. The
records themselves are encoded, and sized, by the core (:mod:`adaptd.daemon.core.records`,
:mod:`adaptd.daemon.core.policy`).

A record the brokers will never take (:data:`UNDELIVERABLE`: too large for the producer's
or the topic's limit, an invalid topic) must not hold its partition forever: it is handed to
the caller's ``on_drop`` while the others are sent, instead of failing the whole batch for a
retry that can never succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from ..core.effects import DeadLetter
from ..core.records import Headers, dead_letter_message

__all__ = ["UNDELIVERABLE", "OutRecord", "Outputs", "Undeliverable"]

UNDELIVERABLE: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
)
"""Refusals that sending again cannot change."""

OutRecord = tuple[str, bytes | None, bytes, Headers | None]
"""(topic, key, value, headers)."""


class Undeliverable(Exception):
    """A record the brokers will never accept (raised when the caller gave no ``on_drop``)."""

    def __init__(self, topic: str, size: int, error: BaseException) -> None:
        super().__init__(f"{topic}: a record of {size} bytes was refused for good: {error!r}")
        self.topic, self.size, self.error = topic, size, error


def record_size(record: OutRecord) -> int:
    """Key, value and header bytes of a record (the Kafka framing comes on top)."""
    _, key, value, headers = record
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers or ())


class Outputs:
    """Sends records and waits for every acknowledgement."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        max_dead_letter_bytes: int,
        max_record_bytes: int = 1_000_000,
    ) -> None:
        self.producer = producer
        self.max_dead_letter_bytes = max_dead_letter_bytes
        """The most of a source value a dead letter keeps (the input limit)."""
        self.max_record_bytes = max_record_bytes
        """The largest record this daemon produces (``kafka.max_output_bytes``)."""

    async def send_all(
        self,
        records: Sequence[OutRecord],
        on_drop: Callable[[int, BaseException], None] | None = None,
    ) -> None:
        """Send records; returns when all are acknowledged. One refused for good is given to
        ``on_drop(position, error)`` and the rest are still sent; without ``on_drop``,
        :class:`Undeliverable` is raised once the rest are acknowledged. Any other error is
        raised as it is (the caller retries the batch)."""
        if not records:
            return
        send = self.producer.send
        pending: list[tuple[int, asyncio.Future[object]]] = []
        refused: list[tuple[int, BaseException]] = []
        for i, (t, k, v, h) in enumerate(records):
            try:
                pending.append((i, await send(t, value=v, key=k, headers=h)))
            except UNDELIVERABLE as exc:  # the producer's own size check refuses at once
                refused.append((i, exc))
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (i, _), result in zip(pending, results, strict=True):
            if isinstance(result, UNDELIVERABLE):
                refused.append((i, result))
            elif isinstance(result, BaseException):
                raise result
        for i, exc in sorted(refused, key=lambda r: r[0]):
            if on_drop is None:
                raise Undeliverable(records[i][0], record_size(records[i]), exc)
            on_drop(i, exc)

    def dead_letter_record(self, topic: str, dl: DeadLetter) -> OutRecord:
        key, value, headers = dead_letter_message(
            dl, self.max_dead_letter_bytes, self.max_record_bytes
        )
        return topic, key, value, headers
