"""Algorithm R as the Lua script runs it: uniform inclusion, and step-for-step agreement with a
pure-Python reference given the same random numbers."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptd.replay.reservoir import ReservoirBuffer

# k=10 out of N=20, 2000 repetitions: the off-by-one variant below changes the inclusion
# probabilities only from 1/2 to 9/19 and 10/19, which k=10, N=100 and a few hundred
# repetitions cannot tell from the truth (p-values of 0.1-0.9); these numbers give it
# p < 1e-14 and still run in about a second against Redis.
K, N, REPS, ALPHA = 10, 20, 2000, 1e-3

SlotRule = Callable[[int, float, int], "int | None"]


def algorithm_r(n: int, u: float, capacity: int) -> int | None:
    """The slot of the n-th distinct item (1-based), or None to skip it."""
    if n <= capacity:
        return n - 1
    j = math.floor(u * n)
    return j if j < capacity else None


def always_slot_zero(n: int, u: float, capacity: int) -> int | None:
    if n <= capacity:
        return n - 1
    return 0 if math.floor(u * n) < capacity else None


def draws_with_n_minus_1(n: int, u: float, capacity: int) -> int | None:
    if n <= capacity:
        return n - 1
    j = math.floor(u * (n - 1))
    return j if j < capacity else None


def always_replaces(n: int, u: float, capacity: int) -> int | None:
    return n - 1 if n <= capacity else math.floor(u * capacity)


@dataclass
class ReferenceReservoir:
    """What reservoir.lua does, in Python, with an exchangeable slot rule."""

    capacity: int
    rule: SlotRule = algorithm_r
    marks: dict[str, int] = field(default_factory=dict)
    seen: int = 0
    slots: dict[int, str] = field(default_factory=dict)

    def add(self, source: str, last_offset: int, item: str, u: float) -> str:
        if source in self.marks and last_offset <= self.marks[source]:
            return "duplicate"
        self.marks[source] = last_offset
        self.seen += 1
        slot = self.rule(self.seen, u, self.capacity)
        if slot is None:
            return "skipped"
        self.slots[slot] = item
        return "stored"


def _local_inclusion_counts(rule: SlotRule, seed: int) -> list[int]:
    rng = random.Random(seed)
    counts = [0] * N
    for _ in range(REPS):
        ref = ReferenceReservoir(K, rule)
        for i in range(N):
            ref.add("src", i, str(i), rng.random())
        for item in ref.slots.values():
            counts[int(item)] += 1
    return counts


@pytest.mark.parametrize(
    ("rule", "uniform"),
    [
        (algorithm_r, True),
        (always_slot_zero, False),
        (draws_with_n_minus_1, False),
        (always_replaces, False),
    ],
)
def test_the_chi_square_check_accepts_algorithm_r_and_rejects_near_misses(
    rule: SlotRule, uniform: bool, inclusion_pvalue
) -> None:
    pvalue = inclusion_pvalue(_local_inclusion_counts(rule, seed=1), K, REPS)
    assert (pvalue > ALPHA) == uniform, f"{rule.__name__}: p = {pvalue:.3g}"


@pytest.mark.integration
async def test_every_item_is_kept_with_probability_k_over_n(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory, inclusion_pvalue
) -> None:
    buffer = ReservoirBuffer(redis_client, prefix=key_prefix, capacity=K, rng=random.Random(9))
    episodes = [episode_factory("s", first_offset=10 * i) for i in range(N)]
    index = {ep.id: i for i, ep in enumerate(episodes)}
    counts = [0] * N
    for _ in range(REPS):
        await buffer.clear()
        await buffer.add_many(episodes)
        for ep in await buffer.sample(K):
            counts[index[ep.id]] += 1
    assert sum(counts) == K * REPS
    assert inclusion_pvalue(counts, K, REPS) > ALPHA


_prefixes = itertools.count()

# (source index, offset step): a step <= 0 re-sends an offset at or below the watermark.
operations = st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 4)), max_size=60)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    capacity=st.integers(1, 6), ops=operations, seed=st.integers(0, 2**32), batched=st.booleans()
)
def test_redis_matches_the_reference_step_for_step(
    redis_url: str,
    key_prefix: str,
    episode_factory,
    reservoir_snapshot,
    capacity: int,
    ops: list[tuple[int, int]],
    seed: int,
    batched: bool,
) -> None:
    # key_prefix is per test, not per example: a counter keeps the examples apart.
    prefix = f"{key_prefix}-{next(_prefixes)}"
    last = [5, 5, 5, 5]
    episodes = []
    for src, step in ops:
        last[src] = max(1, last[src] + step)
        episodes.append(
            episode_factory(f"s{src % 2}", first_offset=last[src] - 1, partition=src // 2)
        )

    ref = ReferenceReservoir(capacity)
    ref_rng = random.Random(seed)
    expected = [ref.add(ep.source, ep.last_offset, ep.id, ref_rng.random()) for ep in episodes]

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        buffer = ReservoirBuffer(client, prefix=prefix, capacity=capacity, rng=random.Random(seed))
        try:
            await buffer.open()
            if batched:
                results = await buffer.add_many(episodes)
            else:
                results = [await buffer.add(ep) for ep in episodes]
            assert results == expected
            snap = await reservoir_snapshot(client, buffer)
            assert (snap.ids, snap.seen, snap.marks) == (ref.slots, ref.seen, ref.marks)
        finally:
            # Not clear(): if the script ever leaked a key, this still removes it.
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    asyncio.run(run())
