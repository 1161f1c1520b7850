"""The group's commits and Redis's side of them, sampled while a scenario runs: the committed
offset of each input partition, then the offset of that partition's snapshot in Redis (the
``__offset__`` field of ``{prefix}:state:{group}:{topic}:{partition}``, written with the
snapshot: daemon/io/stores.py), Redis's count of commands it refused as out of memory, and
its memory in use. Read straight from the broker and Redis (never through a scenario's
proxy cuts), each read time-boxed; a sample that could not be read whole is left out.

The pure summaries below turn the samples into figures; :func:`.invariants.check_commits_stored`
checks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from .sampler import Sampler
from .stage import GROUP, PARTITIONS, PREFIX, TOPICS, Stage

__all__ = [
    "Ledger",
    "LedgerSample",
    "commits_moved",
    "first_not_ready",
    "snapshot_key",
]

READ_TIMEOUT_S = 2.0


def snapshot_key(partition: int) -> str:
    return f"{PREFIX}:state:{GROUP}:{TOPICS['input']}:{partition}"


@dataclass(frozen=True)
class LedgerSample:
    t: float
    committed: dict[int, int]
    """The group's committed offset per partition (-1: none)."""
    stored: dict[int, int | None]
    """The partition snapshot's offset in Redis (None: no snapshot), read after ``committed``."""
    oom: int
    """Commands Redis refused as out of memory since it started."""
    used_memory: int


class Ledger(Sampler):
    """Samples every ``every_s`` while entered (``async with``)."""

    every_s = 0.25

    def __init__(self, stage: Stage) -> None:
        super().__init__()
        self.stage = stage
        self.samples: list[LedgerSample] = []
        self.failed_reads = 0
        self._oom = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.redis = aioredis.Redis(
            host="127.0.0.1",
            port=stage.redis.port,
            socket_timeout=READ_TIMEOUT_S,
            socket_connect_timeout=READ_TIMEOUT_S,
        )

    async def open(self) -> None:
        # Never joins the group: it only reads the group's commits.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.stage.broker.bootstrap,
            group_id=GROUP,
            enable_auto_commit=False,
            request_timeout_ms=int(READ_TIMEOUT_S * 1000),
        )
        await asyncio.wait_for(self._consumer.start(), 30)

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(self._consumer.stop(), 10)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    async def sample(self) -> None:
        t = time.monotonic()
        try:
            sample = await asyncio.wait_for(self._read(t), 3 * READ_TIMEOUT_S)
        except (KafkaError, RedisError, OSError, TimeoutError, ValueError):
            self.failed_reads += 1
            return
        self.samples.append(sample)
        if sample.oom > 0:
            self._oom.set()

    async def _read(self, t: float) -> LedgerSample:
        assert self._consumer is not None
        committed = {}
        for p in range(PARTITIONS):
            value = await self._consumer.committed(TopicPartition(TOPICS["input"], p))
            committed[p] = -1 if value is None else value
        stored: dict[int, int | None] = {}
        for p in range(PARTITIONS):
            raw = await self.redis.hget(snapshot_key(p), "__offset__")
            stored[p] = None if raw is None else int(raw)
        errors = await self.redis.info("errorstats")
        memory = await self.redis.info("memory")
        oom = int(errors.get("errorstat_OOM", {}).get("count", 0))
        return LedgerSample(t, committed, stored, oom, int(memory["used_memory"]))

    def pairs(self) -> list[tuple[dict[int, int], dict[int, int | None]]]:
        return [(s.committed, s.stored) for s in self.samples]

    def first_oom(self) -> LedgerSample | None:
        """The first sample in which Redis had refused a command as out of memory."""
        return next((s for s in self.samples if s.oom > 0), None)

    async def wait_oom(self, timeout_s: float) -> LedgerSample | None:
        """:meth:`first_oom`, waiting for it ``timeout_s`` at most."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._oom.wait(), timeout_s)
        return self.first_oom()

    def between(self, start: float, end: float) -> list[LedgerSample]:
        return [s for s in self.samples if start <= s.t <= end]


def commits_moved(samples: Sequence[LedgerSample], start: float) -> dict[str, Any]:
    """How far the group's commits moved over ``samples`` (records, summed over the
    partitions) and when they last moved, in seconds after ``start`` (None: they never
    moved)."""
    if not samples:
        return {"records": 0, "last_moved_s": None}
    last: float | None = None
    for before, after in itertools.pairwise(samples):
        if after.committed != before.committed:
            last = after.t - start
    first, end = samples[0].committed, samples[-1].committed
    moved = sum(max(0, end.get(p, -1)) - max(0, first.get(p, -1)) for p in end)
    return {"records": moved, "last_moved_s": None if last is None else round(last, 2)}


def first_not_ready(
    samples: Sequence[Mapping[str, Any]], start: float
) -> tuple[float | None, list[str]]:
    """Seconds after ``start`` of the first sample whose /readyz was not 200, with the
    checks that failed in it; (None, []) when it stayed 200."""
    for s in samples:
        if s["t"] >= start and s["ready"] != 200:
            return round(s["t"] - start, 2), list(s.get("not_ready", []))
    return None, []
