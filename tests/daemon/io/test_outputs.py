"""Sending records: every one acknowledged by the real broker before send_all returns."""

from __future__ import annotations

import base64
import json

import pytest
from aiokafka import AIOKafkaProducer
from daemon_support import read_topic

from adaptd.daemon.core.effects import DeadLetter
from adaptd.daemon.core.schema import Reason
from adaptd.daemon.io.outputs import Outputs, Undeliverable

DL = DeadLetter(Reason.NON_POSITIVE, "price -1", "in", 3, 12345, 0, b"A", b"0123456789")


async def test_dead_letter_record_carries_the_reason_header() -> None:
    # Built, never started: encoding needs no broker.
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    outputs = Outputs(producer, max_dead_letter_bytes=8)
    topic, key, value, headers = outputs.dead_letter_record("dlq", DL)
    assert (topic, key) == ("dlq", DL.key)
    assert headers is not None and headers[0] == ("adaptd-reason", b"non_positive")
    assert dict(headers)["adaptd-truncated"] == b"value"
    body = json.loads(value)
    assert body["value_truncated"] is True
    assert base64.b64decode(body["value"]) == DL.value[:8]
    await outputs.send_all([])  # nothing to send: returns without touching the producer


@pytest.mark.integration
async def test_send_all_returns_once_every_record_is_acknowledged(
    kafka_bootstrap: str, topic_factory
) -> None:
    topic = await topic_factory("out", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        outputs = Outputs(producer, max_dead_letter_bytes=1024)
        records = [(topic, f"k{i}".encode(), f"v{i}".encode(), None) for i in range(20)]
        records.append(outputs.dead_letter_record(topic, DL))
        await outputs.send_all(records)
    finally:
        await producer.stop()
    got = await read_topic(kafka_bootstrap, topic, count=21)
    assert sorted(r.value for r in got if r.key != b"A") == sorted(
        f"v{i}".encode() for i in range(20)
    )
    (dead,) = [r for r in got if r.key == b"A"]
    assert dict(dead.headers) == {"adaptd-reason": b"non_positive"}
    assert json.loads(dead.value)["source"]["offset"] == 12345


@pytest.mark.integration
async def test_a_record_refused_for_good_is_handed_over_and_the_rest_are_sent(
    kafka_bootstrap: str, topic_factory
) -> None:
    topic = await topic_factory("out", partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=20_000
    )
    await producer.start()
    try:
        outputs = Outputs(producer, max_dead_letter_bytes=1024)
        records = [(topic, b"k", f"v{i}".encode(), None) for i in range(3)]
        records.insert(1, (topic, b"big", b"x" * 50_000, None))
        dropped: list[tuple[int, BaseException]] = []
        await outputs.send_all(records, lambda i, e: dropped.append((i, e)))
        assert [(i, type(e).__name__) for i, e in dropped] == [(1, "MessageSizeTooLargeError")]
        # Without on_drop, the caller hears of it once the rest are acknowledged.
        with pytest.raises(Undeliverable) as raised:
            await outputs.send_all(records[:2])
        assert raised.value.size == len(b"big") + 50_000
    finally:
        await producer.stop()
    got = await read_topic(kafka_bootstrap, topic, count=4)
    assert [r.value for r in got] == [b"v0", b"v1", b"v2", b"v0"]
