"""Sending the daemon's records to Kafka and waiting until the brokers acknowledged every one
(acks=all), which is what lets the service commit the input offsets that caused them. The
records themselves are encoded by the core (:mod:`adaptd.daemon.core.records`,
:mod:`adaptd.daemon.core.policy`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from ..core.effects import DeadLetter
from ..core.records import dead_letter_message

__all__ = ["Outputs"]


class Outputs:
    """Sends records and waits for every acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer, max_dead_letter_bytes: int) -> None:
        self.producer = producer
        self.max_dead_letter_bytes = max_dead_letter_bytes

    async def send_all(
        self, records: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]]
    ) -> None:
        """Send (topic, key, value, headers) records; returns when all are acknowledged."""
        if not records:
            return
        send = self.producer.send
        futures = [await send(t, value=v, key=k, headers=h) for t, k, v, h in records]
        await asyncio.gather(*futures)

    def dead_letter_record(
        self, topic: str, dl: DeadLetter
    ) -> tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]:
        key, value = dead_letter_message(dl, self.max_dead_letter_bytes)
        return topic, key, value, [("adaptd-reason", str(dl.reason).encode())]
