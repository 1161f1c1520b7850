"""The steady feed the scenarios run under, and the readers that check the outcome.

:class:`Workload` makes market events of a few streams on the fly: each stream a random walk
whose drift and volatility change every ``regime_len`` of its events (so the daemon detects
shifts and publishes policies all along), with a malformed JSON record every ``bad_every``-th
record. :class:`Feed` sends them at a fixed rate and records the (partition, offset) the
broker acknowledged for each, bad ones marked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

__all__ = ["Feed", "Workload", "committed", "read_topic"]

BAD_VALUE = b'{"v": 1, "stream": "S0", "ts": 17000'
"""A truncated JSON object: dead-lettered as invalid_json."""


@dataclass
class Workload:
    streams: int = 4
    regime_len: int = 300
    bad_every: int = 97
    seed: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)
    _state: list[list[float]] = field(init=False, repr=False)
    _n: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        # Per stream: log price, drift, volatility, events so far.
        self._state = [[np.log(100.0), 0.0, 0.01, 0] for _ in range(self.streams)]
        self._enc = msgspec.json.Encoder()

    def next(self) -> tuple[bytes, bytes, bool]:
        """(key, value, bad) of the next record."""
        self._n += 1
        if self.bad_every and self._n % self.bad_every == 0:
            return b"S0", BAD_VALUE, True
        s = self._n % self.streams
        st = self._state[s]
        if (int(st[3]) + s * self.regime_len // self.streams) % self.regime_len == 0:
            # A new regime, staggered across the streams; volatilities differ by 3x or more.
            st[1] = float(self._rng.normal(0.0, 0.002))
            st[2] = float(self._rng.choice([0.003, 0.01, 0.03]))
        st[0] += st[1] + st[2] * float(self._rng.standard_normal())
        ts = 1_700_000_000_000 + int(st[3]) * 60_000
        st[3] += 1
        name = f"S{s}"
        value = self._enc.encode({"v": 1, "stream": name, "ts": ts, "price": float(np.exp(st[0]))})
        return name.encode(), value, False


@dataclass
class Feed:
    """Sends ``rate`` records a second to ``topic`` until stopped."""

    bootstrap: str
    topic: str
    rate: int = 400
    workload: Workload = field(default_factory=Workload)
    acked: list[tuple[int, int, bool, int]] = field(default_factory=list)
    """(partition, offset, bad, send sequence number) per acknowledged record."""
    failed_seqs: list[int] = field(default_factory=list)
    sent: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sending and wait for every acknowledgement (or failure)."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def cancel(self) -> None:
        """Stop at once, without waiting for acknowledgements (a scenario that failed)."""
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def failed(self) -> int:
        return len(self.failed_seqs)

    @property
    def bad(self) -> list[tuple[int, int]]:
        return [(p, o) for p, o, bad, _ in self.acked if bad]

    def ends(self, before: int | None = None) -> dict[int, int]:
        """One past the last acknowledged offset per partition (of the records sent before
        the ``before``-th, when given)."""
        out: dict[int, int] = {}
        for p, o, _, seq in self.acked:
            if before is None or seq < before:
                out[p] = max(out.get(p, 0), o + 1)
        return out

    def settled(self, before: int) -> bool:
        """Whether every record sent before the ``before``-th is acknowledged or failed."""
        return (
            sum(seq < before for *_, seq in self.acked)
            + sum(seq < before for seq in self.failed_seqs)
            >= before
        )

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            request_timeout_ms=60_000,
        )
        await producer.start()
        pending: set[asyncio.Future] = set()

        def done(bad: bool, seq: int):
            def record(fut: asyncio.Future) -> None:
                pending.discard(fut)
                if fut.cancelled() or fut.exception() is not None:
                    self.failed_seqs.append(seq)
                    return
                meta = fut.result()
                self.acked.append((meta.partition, meta.offset, bad, seq))

            return record

        tick = 0.05
        per_tick = self.rate * tick
        owed = 0.0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                owed += per_tick
                while owed >= 1:
                    owed -= 1
                    key, value, bad = self.workload.next()
                    fut = await producer.send(self.topic, value=value, key=key)
                    pending.add(fut)
                    fut.add_done_callback(done(bad, self.sent))
                    self.sent += 1
                next_at += tick
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - time.monotonic()))
            if pending:
                await asyncio.wait(set(pending), timeout=90)
        finally:
            await producer.stop()


async def read_topic(bootstrap: str, topic: str, idle_s: float = 3.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, until nothing came for ``idle_s``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    last = time.monotonic()
    deadline = last + 120
    try:
        while time.monotonic() < deadline and time.monotonic() - last <= idle_s:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
            if batch:
                last = time.monotonic()
    finally:
        await consumer.stop()
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1: none); never joins the group."""
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
