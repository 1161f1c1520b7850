"""The reservoir's per-(stream, regime) index against the real Redis: RegimeSampler shares
a batch evenly over the (stream, regime) keys held and draws uniformly within each, and a
reservoir written before the index existed is indexed when it is opened."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from adaptd.replay.episode import Episode
from adaptd.replay.reservoir import ReservoirBuffer
from adaptd.replay.samplers import RegimeSampler, StreamSampler
from adaptd.replay.strata import regime_key

pytestmark = pytest.mark.integration

Factory = Callable[..., Episode]


async def _buffer(
    client: aioredis.Redis, prefix: str, capacity: int, seed: int = 0
) -> ReservoirBuffer:
    buffer = ReservoirBuffer(client, prefix=prefix, capacity=capacity, rng=random.Random(seed))
    await buffer.open()
    return buffer


def _held(factory: Factory, layout: dict[tuple[str, int], int]) -> list[Episode]:
    """``count`` episodes of each (stream, regime), offsets increasing per stream."""
    out, next_offset = [], Counter[str]()
    for (stream, regime), count in layout.items():
        for _ in range(count):
            out.append(factory(stream, first_offset=next_offset[stream], regime=regime))
            next_offset[stream] += 10
    return out


def _keys(episodes: list[Episode]) -> Counter[str]:
    return Counter(regime_key(ep.stream, ep.regime) for ep in episodes)


async def test_regime_sampling_gives_every_stream_regime_an_equal_share(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, reservoir_snapshot
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=500)
    # One stream mostly in regime 0; its rare regime 1 and another stream's regime 0.
    await buffer.add_many(_held(episode_factory, {("a", 0): 300, ("a", 1): 20, ("b", 0): 20}))
    snap = await reservoir_snapshot(redis_client, buffer)
    assert snap.per_regime == {"a:0": 300, "a:1": 20, "b:0": 20}

    by_stream = _keys(await buffer.sample(30, sampler=StreamSampler()))
    assert by_stream["a:0"] > 10  # stream stratification leaves regime a:1 rare
    for n, expected in [
        (30, {"a:0": 10, "a:1": 10, "b:0": 10}),
        (90, {"a:0": 50, "a:1": 20, "b:0": 20}),
    ]:
        drawn = await buffer.sample(n, sampler=RegimeSampler())
        assert _keys(drawn) == expected
        assert len({ep.id for ep in drawn}) == n


async def test_regime_sampling_is_uniform_within_a_regime(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, inclusion_pvalue
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=100, seed=3)
    await buffer.add_many(_held(episode_factory, {("a", 0): 12, ("a", 1): 3}))
    counts: Counter[str] = Counter()
    reps = 1200
    for _ in range(reps):
        drawn = await buffer.sample(4, sampler=RegimeSampler())
        assert _keys(drawn) == {"a:0": 2, "a:1": 2}
        counts.update(ep.id for ep in drawn if ep.regime == 0)
    assert len(counts) == 12
    # Each of regime 0's 12 episodes is in its share of 2 with probability 1/6.
    assert inclusion_pvalue(list(counts.values()), k=2, reps=reps) > 1e-3


async def test_regime_index_follows_evictions(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, reservoir_snapshot
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=25, seed=7)
    episodes = [
        episode_factory(f"s{i % 2}", first_offset=10 * i, regime=(i // 40) % 3) for i in range(300)
    ]
    await buffer.add_many(episodes)
    snap = await reservoir_snapshot(redis_client, buffer)  # checks the index against the slots
    assert len(snap.per_regime) == 6
    drawn = await buffer.sample(25, sampler=RegimeSampler())
    assert sorted(ep.id for ep in drawn) == sorted(snap.ids.values())
    small = await buffer.sample(6, sampler=RegimeSampler())
    assert _keys(small) == dict.fromkeys(snap.per_regime, 1)


async def test_a_reservoir_from_before_the_regime_index_is_indexed_on_open(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, reservoir_snapshot
) -> None:
    old = await _buffer(redis_client, key_prefix, capacity=1200)
    await old.add_many(_held(episode_factory, {("a", 0): 900, ("a", 2): 40, ("b", 1): 60}))
    k = old.keys
    # What an older version left behind: no regime owners, counts, sets or index flag.
    regime_sets = [key async for key in redis_client.scan_iter(match=f"{k.regime_prefix}*")]
    await redis_client.delete(k.regime_owners, k.regime_counts, *regime_sets)
    await redis_client.hdel(k.meta, "regime_index")
    assert await old.sample(3, sampler=RegimeSampler()) == []

    reopened = await _buffer(redis_client, key_prefix, capacity=1200)
    snap = await reservoir_snapshot(redis_client, reopened)
    assert snap.per_regime == {"a:0": 900, "a:2": 40, "b:1": 60}
    assert await redis_client.hget(k.meta, "regime_index") == b"1"
    drawn = await reopened.sample(9, sampler=RegimeSampler())
    assert _keys(drawn) == {"a:0": 3, "a:2": 3, "b:1": 3}

    # A second pass (another daemon opening at the same time) counts nothing twice.
    await redis_client.hdel(k.meta, "regime_index")
    await _buffer(redis_client, key_prefix, capacity=1200)
    assert (await reservoir_snapshot(redis_client, reopened)).per_regime == snap.per_regime


async def test_clear_removes_the_regime_index(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=5)
    await buffer.add_many(_held(episode_factory, {("a", 0): 4, ("a", 1): 4}))
    await buffer.clear()
    assert [key async for key in redis_client.scan_iter(match=f"{key_prefix}*")] == []
    assert await buffer.sample(4, sampler=RegimeSampler()) == []
