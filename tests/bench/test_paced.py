"""The fixed-rate feed of make bench's last pass, on the real broker: from its own process,
every event arrives, in order, and no faster than asked."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from bench.paced import paced_feed
from bench.synthetic import synthetic_events


async def test_paced_feed_writes_every_event_in_order_at_most_at_the_rate(
    kafka_bootstrap: str, topic_factory: Callable[..., Awaitable[str]]
) -> None:
    topic = await topic_factory("paced")
    achieved = await paced_feed(kafka_bootstrap, topic, 3, 100, 50, rate=1_000.0)
    # Paced, not a burst: 300 events at 1,000/s take at least 0.3 s (one tick's slack).
    assert 0 < achieved <= 1_000.0 * 300 / 290
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"paced-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[tuple[bytes, bytes]] = []
        while len(got) < 300:
            batch = await consumer.getmany(timeout_ms=2_000)
            if not batch:
                break
            got += [(r.key, r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    assert got == synthetic_events(3, 100, 50, seed=1, stagger=True)
