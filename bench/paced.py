"""A feed that writes events at a fixed rate, as a live market feed arrives, instead of all
at once: latency measured on a backlog is the time to drain a queue, so ``make bench`` also
measures the daemon at a stated load below its capacity (wrk2's point about measuring
latency at a fixed throughput).

The feed runs in its own process (``python -m bench.paced``), as a real feed would: on the
benchmark's event loop its sends would compete with the daemon it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiokafka import AIOKafkaProducer

from .synthetic import synthetic_events

__all__ = ["paced_feed", "produce_paced"]

TICK_S = 0.01
"""Events due are sent every tick, so the feed is smooth at the scale of a poll."""


async def produce_paced(
    bootstrap: str, topic: str, events: list[tuple[bytes, bytes]], rate: float
) -> float:
    """Send ``events`` in order at ``rate`` per second; returns the rate achieved (lower than
    asked when the producer cannot keep up, which the benchmark reports)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        sent = 0
        pending: list[asyncio.Future[object]] = []
        while sent < len(events):
            due = min(len(events), int((loop.time() - start) * rate) + 1)
            for key, value in events[sent:due]:
                pending.append(await producer.send(topic, value=value, key=key))
            sent = max(sent, due)
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending = []
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*pending)
        return len(events) / max(loop.time() - start, 1e-9)
    finally:
        await producer.stop()


async def paced_feed(
    bootstrap: str, topic: str, streams: int, per_stream: int, regime_len: int, rate: float
) -> float:
    """:func:`produce_paced` of :func:`~.synthetic.synthetic_events` (staggered, seed 1) in a
    child process; returns the rate it achieved."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.paced",
        bootstrap,
        topic,
        str(streams),
        str(per_stream),
        str(regime_len),
        str(rate),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the paced feed exited with {child.returncode}")
    return float(json.loads(out)["events_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("bootstrap", "topic"):
        parser.add_argument(name)
    for name in ("streams", "per_stream", "regime_len"):
        parser.add_argument(name, type=int)
    parser.add_argument("rate", type=float)
    a = parser.parse_args()
    events = synthetic_events(a.streams, a.per_stream, a.regime_len, seed=1, stagger=True)
    rate = asyncio.run(produce_paced(a.bootstrap, a.topic, events, a.rate))
    print(json.dumps({"events_per_s": rate}))


if __name__ == "__main__":
    main()
