"""Helpers for the daemon's integration tests: synthetic market streams with a known regime
change, a producer, and topic readers that count messages (Tansu's reported end offsets can
lag, so nothing here relies on them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from adaptd.daemon.config.settings import Settings
from adaptd.daemon.core.signing import Keyring, generate_key_pair
from adaptd.daemon.io.diagnostics import snapshot
from adaptd.daemon.service.daemon import Daemon

_enc = msgspec.json.Encoder()
Headers = list[tuple[str, bytes]]

SIGNING_KEY, SIGNING_PUBLIC = generate_key_pair()
"""The key pair of the tests' daemons (settings_factory signs with it)."""
TRUSTED = Keyring.from_pem([SIGNING_PUBLIC])
"""What the tests' subscribers verify the policies with."""


def regime_stream(
    stream: str,
    n_before: int = 700,
    n_after: int = 300,
    *,
    seed: int = 0,
    drift_after: float = 0.02,
    vol_before: float = 0.01,
    vol_after: float = 0.03,
    t0_ms: int = 1_700_000_000_000,
) -> list[tuple[bytes, bytes]]:
    """(key, value) events of one stream: a driftless walk, then a strong trend with more
    volatility from event n_before on."""
    rng = np.random.default_rng(seed)
    rets = np.concatenate(
        [
            rng.normal(0.0, vol_before, n_before),
            rng.normal(drift_after, vol_after, n_after),
        ]
    )
    prices = 100.0 * np.exp(np.cumsum(rets))
    return [
        (
            stream.encode(),
            _enc.encode({"v": 1, "stream": stream, "ts": t0_ms + i * 60_000, "price": float(p)}),
        )
        for i, p in enumerate(prices)
    ]


def segments_stream(
    stream: str,
    segments: list[tuple[int, float, float]],
    *,
    seed: int = 0,
    t0_ms: int = 1_700_000_000_000,
) -> list[tuple[bytes, bytes]]:
    """(key, value) events of one stream made of ``(events, drift, volatility)`` segments of
    log returns, one minute apart."""
    rng = np.random.default_rng(seed)
    rets = np.concatenate([rng.normal(mu, sigma, n) for n, mu, sigma in segments])
    prices = 100.0 * np.exp(np.cumsum(rets))
    return [
        (
            stream.encode(),
            _enc.encode({"v": 1, "stream": stream, "ts": t0_ms + i * 60_000, "price": float(p)}),
        )
        for i, p in enumerate(prices)
    ]


async def produce(
    bootstrap: str,
    topic: str,
    events: list[tuple[bytes | None, bytes]] | list[tuple[bytes | None, bytes, Headers]],
    partition: int | None = None,
) -> list[int]:
    """Send in order; returns the offsets the broker assigned."""
    return [o for _, o in await produce_at(bootstrap, topic, events, partition)]


async def produce_at(
    bootstrap: str,
    topic: str,
    events: list[tuple[bytes | None, bytes]] | list[tuple[bytes | None, bytes, Headers]],
    partition: int | None = None,
) -> list[tuple[int, int]]:
    """Send (key, value) or (key, value, headers) in order; returns the (partition, offset)
    the broker assigned to each."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=v, key=k, partition=partition, headers=h[0] if h else None
            )
            for k, v, *h in events
        ]
        return [((m := await f).partition, m.offset) for f in futures]
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    count: int | None = None,
    timeout_s: float = 30.0,
    idle_s: float = 2.0,
) -> list[ConsumerRecord]:
    """Every record of a topic from the beginning: until ``count`` arrived, or until nothing
    came for ``idle_s`` (when count is None)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
            if batch:
                last = time.monotonic()
            if count is not None and len(out) >= count:
                break
            if count is None and time.monotonic() - last > idle_s:
                break
    finally:
        await consumer.stop()
    return out


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1: none)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        out = {}
        for p in range(partitions):
            value = await consumer.committed(TopicPartition(topic, p))
            out[p] = -1 if value is None else value
        return out
    finally:
        await consumer.stop()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout_s: float, what: str, every_s: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(every_s)
    # What an in-process daemon's tasks wait on (shown with the failure's captured output).
    print(snapshot())
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def volume_regimes_stream(
    stream: str,
    segments: list[tuple[int, float, float, float]],
    *,
    seed: int = 0,
    t0_ms: int = 1_700_000_000_000,
) -> list[tuple[bytes, bytes]]:
    """(key, value) events of one stream made of ``(events, drift, volatility, sign)``
    segments, in which the traded volume predicts the next return: with ``z`` the volume's
    log-deviation (in standard units), the next log return is ``drift + sign * volatility * z
    + volatility * noise``. Segments of opposite ``sign`` need opposite policies for the same
    features (volume_z), and their drifts tell them apart for the regime classifier."""
    rng = np.random.default_rng(seed)
    n = sum(segment[0] for segment in segments)
    z = rng.standard_normal(n)
    rets, i = np.empty(n), 0
    for count, drift, vol, sign in segments:
        for _ in range(count):
            lead = z[i - 1] if i else 0.0  # the volume printed with the previous event
            rets[i] = drift + sign * vol * lead + vol * rng.standard_normal()
            i += 1
    prices = 100.0 * np.exp(np.cumsum(rets))
    volumes = 1000.0 * np.exp(0.5 * z)
    return [
        (
            stream.encode(),
            _enc.encode(
                {
                    "v": 1,
                    "stream": stream,
                    "ts": t0_ms + k * 60_000,
                    "price": float(p),
                    "volume": float(v),
                }
            ),
        )
        for k, (p, v) in enumerate(zip(prices, volumes, strict=True))
    ]


async def run_over(
    settings: Settings, topic: str, events: list[tuple[bytes, bytes]], timeout_s: float = 120
) -> Daemon:
    """Start a daemon, produce ``events`` to ``topic``, and stop it once every event is
    processed and no adaptation is in flight; returns the stopped daemon to inspect."""
    daemon = Daemon(settings)
    run = asyncio.create_task(daemon.run())
    await daemon.wait_started(run, 60)
    try:
        await produce(settings.kafka.bootstrap_servers, topic, events)

        async def consumed() -> bool:
            return daemon.events_seen >= len(events) and not daemon.publisher.inflight

        await wait_until(consumed, timeout_s, "every event processed and every adaptation done")
    finally:
        daemon.stop()
        await asyncio.wait_for(run, 60)
    return daemon
