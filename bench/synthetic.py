"""The ingest benchmark's synthetic market: random walks whose drift and volatility change
regime every so many events, the same events in every stream or staggered across streams,
and a producer that writes them to a topic."""

from __future__ import annotations

import asyncio
import math

import msgspec
import numpy as np
from aiokafka import AIOKafkaProducer

__all__ = ["produce", "regime_path", "synthetic_events"]


def regime_path(
    s: int,
    streams: int,
    per_stream: int,
    regime_len: int,
    rng: np.random.Generator,
    *,
    stagger: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Stream ``s``'s drift and volatility at each event: a new regime every ``regime_len``
    events, at the same events in every stream or, with ``stagger``, ``s / streams`` of a
    regime later."""
    # One regime more when staggered; none otherwise, so the data stay as before.
    n = math.ceil(per_stream / regime_len) + (1 if stagger else 0)
    skip = regime_len * s // streams if stagger else 0
    drift = np.repeat(rng.normal(0, 0.002, n), regime_len)[skip : skip + per_stream]
    vol = np.repeat(rng.choice([0.005, 0.01, 0.03], n), regime_len)[skip : skip + per_stream]
    return drift, vol


def synthetic_events(
    streams: int, per_stream: int, regime_len: int, seed: int = 0, *, stagger: bool = False
) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs, streams interleaved, regimes as :func:`regime_path` draws them."""
    rng = np.random.default_rng(seed)
    enc = msgspec.json.Encoder()
    columns = []
    for s in range(streams):
        drift, vol = regime_path(s, streams, per_stream, regime_len, rng, stagger=stagger)
        log_price = np.log(100.0) + np.cumsum(drift + vol * rng.standard_normal(per_stream))
        columns.append((f"SYN-{s:03d}", np.exp(log_price)))
    t0 = 1_700_000_000_000
    out = []
    for i in range(per_stream):
        for name, prices in columns:
            value = enc.encode(
                {"v": 1, "stream": name, "ts": t0 + i * 1000, "price": float(prices[i])}
            )
            out.append((name.encode(), value))
    return out


async def produce(bootstrap: str, topic: str, events: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        pending = []
        for key, value in events:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
