from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable

import msgspec
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer

from adaptd.adapters.tasks.series import MarketSeries, load, load_all
from adaptd.tools.feed import encode_row, produce_series

TopicFactory = Callable[..., Awaitable[str]]


def test_encode_row_is_schema_v1() -> None:
    apple = load("apple")
    key, value = encode_row(apple, 958)
    assert key == b"AAPL"
    event = msgspec.json.decode(value)
    assert event == {
        "v": 1,
        "stream": "AAPL",
        "ts": int(apple.ts_ms[958]),
        "price": float(apple.price[958]),
        "volume": float(apple.volume[958]),  # type: ignore[index]
    }
    assert encode_row(apple, 958) == (key, value)


def test_encode_row_omits_missing_columns_and_keeps_bid_ask() -> None:
    _, value = encode_row(load("bitcoin"), 0)
    assert set(msgspec.json.decode(value)) == {"v", "stream", "ts", "price"}
    quoted = MarketSeries(
        "q", "Q", np.array([5], dtype=np.int64), np.array([2.0]), None, {}, "",
        bid=np.array([1.5]), ask=np.array([2.5]),
    )  # fmt: skip
    assert msgspec.json.decode(encode_row(quoted, 0)[1]) == {
        "v": 1, "stream": "Q", "ts": 5, "price": 2.0, "bid": 1.5, "ask": 2.5,
    }  # fmt: skip


def test_encode_row_checks_the_row() -> None:
    with pytest.raises(IndexError, match="row 822"):
        encode_row(load("bitcoin"), 822)


async def consume(bootstrap: str, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(60):
            while len(records) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
        # Anything beyond the expected count would be a duplicate.
        extra = await consumer.getmany(timeout_ms=500)
        records.extend(r for batch in extra.values() for r in batch)
    finally:
        await consumer.stop()
    return records


@pytest.mark.integration
async def test_all_three_series_arrive_complete_keyed_and_in_order(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory("market", partitions=3)
    series = load_all()
    limit = 400
    progress: dict[str, list[int]] = defaultdict(list)
    sent = await produce_series(
        kafka_bootstrap,
        topic,
        series,
        limit=limit,
        on_progress=lambda stream, n: progress[stream].append(n),
    )
    assert sent == {s.stream: limit for s in series}
    for s in series:
        assert progress[s.stream][-1] == limit
        assert progress[s.stream] == sorted(progress[s.stream])

    records = await consume(kafka_bootstrap, topic, 3 * limit)
    assert len(records) == 3 * limit
    by_stream: dict[bytes, list] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_stream[record.key].append(record)
    assert set(by_stream) == {s.stream.encode() for s in series}
    for s in series:
        got = by_stream[s.stream.encode()]
        assert len({r.partition for r in got}) == 1
        assert [r.value for r in got] == [encode_row(s, i)[1] for i in range(limit)]
        stamps = [msgspec.json.decode(r.value)["ts"] for r in got]
        assert stamps == sorted(stamps)


@pytest.mark.integration
async def test_paced_feed_delivers_every_row(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory("paced")
    apple, bitcoin = load("apple"), load("bitcoin")
    sent = await produce_series(kafka_bootstrap, topic, [apple, bitcoin], rate=2_000.0, limit=60)
    assert sent == {"AAPL": 60, "BTC-USD": 60}
    records = await consume(kafka_bootstrap, topic, 120)
    values = sorted(records, key=lambda r: r.offset)
    assert [r.value for r in values if r.key == b"AAPL"] == [
        encode_row(apple, i)[1] for i in range(60)
    ]
    assert sum(r.key == b"BTC-USD" for r in values) == 60


@pytest.mark.integration
async def test_limit_zero_sends_nothing(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = await topic_factory("empty")
    assert await produce_series(kafka_bootstrap, topic, [load("apple")], limit=0) == {"AAPL": 0}


@pytest.mark.integration
async def test_cancelling_stops_the_feed_and_leaves_no_task(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory("cancel")
    before = asyncio.all_tasks()
    started = asyncio.Event()
    progress: list[int] = []

    def seen(stream: str, n: int) -> None:
        progress.append(n)
        if n > 0:
            started.set()

    feed = asyncio.create_task(
        produce_series(kafka_bootstrap, topic, load_all(), rate=20.0, on_progress=seen)
    )
    async with asyncio.timeout(30):
        await started.wait()
    feed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await feed
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert max(progress) < len(load("bitcoin"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"rate": -1.0}, "rate"), ({"rate": float("inf")}, "rate"), ({"limit": -1}, "limit")],
)
async def test_arguments_are_checked_before_connecting(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await produce_series("127.0.0.1:1", "t", [load("apple")], **kwargs)


async def test_stream_ids_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        await produce_series("127.0.0.1:1", "t", [load("apple"), load("apple")])
