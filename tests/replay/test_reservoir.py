"""ReservoirBuffer against the real Redis: counting, idempotency, capacity, batching, and how
it runs the sampler it is given (the samplers themselves: test_samplers.py)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from replay_support import CountingClient

from adaptd.replay.episode import Episode
from adaptd.replay.reservoir import AddResult, ReservoirBuffer
from adaptd.replay.samplers import StreamSampler, UniformSampler
from adaptd.replay.sampling import SlotDraws

pytestmark = pytest.mark.integration

Factory = Callable[..., Episode]


def _stream_of_episodes(factory: Factory, count: int, streams: int = 3) -> list[Episode]:
    # Episodes of `streams` streams on two partitions, each source's offsets increasing.
    out = []
    for i in range(count):
        stream = f"s{i % streams}"
        out.append(factory(stream, first_offset=10 * i, partition=i % 2))
    return out


async def _buffer(
    client: aioredis.Redis, prefix: str, capacity: int, seed: int = 0
) -> ReservoirBuffer:
    buffer = ReservoirBuffer(client, prefix=prefix, capacity=capacity, rng=random.Random(seed))
    await buffer.open()
    return buffer


@pytest.mark.parametrize("inserted", [4, 10, 37])
async def test_size_is_min_of_inserted_and_capacity_and_seen_counts_each_once(
    redis_client: aioredis.Redis,
    key_prefix: str,
    episode_factory: Factory,
    reservoir_snapshot,
    inserted: int,
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=10)
    episodes = _stream_of_episodes(episode_factory, inserted)
    results = [await buffer.add(ep) for ep in episodes]
    assert results[:10] == [AddResult.STORED] * min(inserted, 10)
    assert AddResult.DUPLICATE not in results
    stats = await buffer.stats()
    assert (stats.size, stats.seen, stats.capacity) == (min(inserted, 10), inserted, 10)
    assert sum(stats.per_stream.values()) == stats.size
    before = await reservoir_snapshot(redis_client, buffer)
    assert set(before.ids.values()) <= {ep.id for ep in episodes}
    assert before.per_stream == stats.per_stream

    # Redelivery after a crash: the same episodes again, one by one and batched.
    assert [await buffer.add(ep) for ep in episodes] == [AddResult.DUPLICATE] * inserted
    assert await buffer.add_many(episodes) == [AddResult.DUPLICATE] * inserted
    after = await reservoir_snapshot(redis_client, buffer)
    assert (after.ids, after.seen, after.marks) == (before.ids, before.seen, before.marks)


async def test_watermark_is_per_source_and_compares_last_offsets(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, reservoir_snapshot
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=100)
    first = episode_factory("s", first_offset=100, n=4)  # offsets 100..103
    assert await buffer.add(first) == AddResult.STORED
    # Same source: an episode ending at or before 103 is a duplicate, whatever its start.
    assert await buffer.add(episode_factory("s", first_offset=90, n=14)) == AddResult.DUPLICATE
    assert await buffer.add(episode_factory("s", first_offset=50, n=2)) == AddResult.DUPLICATE
    # Other partitions, topics and streams are other sources with their own marks.
    for other in (
        episode_factory("s", first_offset=100, n=4, partition=1),
        episode_factory("s", first_offset=100, n=4, topic="other"),
        episode_factory("u", first_offset=100, n=4),
    ):
        assert await buffer.add(other) == AddResult.STORED
    # A later end is new data even if it overlaps (a re-cut after lost state).
    assert await buffer.add(episode_factory("s", first_offset=102, n=4)) == AddResult.STORED
    snap = await reservoir_snapshot(redis_client, buffer)
    assert snap.seen == 5
    assert snap.marks["t:0:s"] == 105
    assert snap.marks == {"t:0:s": 105, "t:1:s": 103, "other:0:s": 103, "t:0:u": 103}


async def test_offsets_beyond_double_precision_are_compared_exactly(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=5)
    base = 2**62  # doubles cannot tell base+1 from base+2 apart
    assert await buffer.add(episode_factory("s", first_offset=base, n=2)) == AddResult.STORED
    assert await buffer.add(episode_factory("s", first_offset=base, n=2)) == AddResult.DUPLICATE
    assert await buffer.add(episode_factory("s", first_offset=base + 1, n=2)) == AddResult.STORED
    assert await buffer.add(episode_factory("s", first_offset=999, n=2)) == AddResult.DUPLICATE


async def test_capacity_mismatch_names_both_capacities(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=5)
    await buffer.add(episode_factory())
    await buffer.open()  # the same capacity again is fine
    other = ReservoirBuffer(redis_client, prefix=key_prefix, capacity=7)
    with pytest.raises(ValueError, match=r"capacity 5.*capacity 7"):
        await other.open()
    # Without open(), the script itself refuses, for single and batched adds alike.
    with pytest.raises(ValueError, match=r"capacity 5.*capacity 7"):
        await other.add(episode_factory(first_offset=50))
    with pytest.raises(ValueError, match=r"capacity 5.*capacity 7"):
        await other.add_many([episode_factory(first_offset=60)])
    assert (await buffer.stats()).seen == 1
    await buffer.clear()
    await other.open()
    assert (await other.stats()).capacity == 7


def test_constructor_validates_and_does_no_io() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1)  # nothing listens there
    buffer = ReservoirBuffer(dead, prefix="p", capacity=3)
    assert (buffer.prefix, buffer.capacity) == ("p", 3)
    with pytest.raises(ValueError, match="capacity must be an integer >= 1, got 0"):
        ReservoirBuffer(dead, prefix="p", capacity=0)
    with pytest.raises(ValueError, match="free of braces"):
        ReservoirBuffer(dead, prefix="a{b}", capacity=3)
    with pytest.raises(ValueError, match="decode_responses=False"):
        ReservoirBuffer(aioredis.Redis(decode_responses=True), prefix="p", capacity=3)


async def test_add_many_matches_sequential_adds_in_one_round_trip(
    counting_client: Callable[[], CountingClient],
    redis_client: aioredis.Redis,
    key_prefix: str,
    episode_factory: Factory,
    reservoir_snapshot,
) -> None:
    rng = random.Random(7)
    episodes = _stream_of_episodes(episode_factory, 60)
    for i in rng.sample(range(60), 15):  # redeliveries mixed in
        episodes.insert(rng.randrange(i + 1, len(episodes) + 1), episodes[i])
    one_by_one = await _buffer(redis_client, f"{key_prefix}-seq", capacity=12, seed=3)
    sequential = [await one_by_one.add(ep) for ep in episodes]

    counting = counting_client()
    batched = await _buffer(counting.client, f"{key_prefix}-batch", capacity=12, seed=3)
    counting.sends = 0
    results = await batched.add_many(episodes)
    assert counting.sends == 1
    assert results == sequential
    assert results.count(AddResult.DUPLICATE) == 15
    a = await reservoir_snapshot(redis_client, one_by_one)
    b = await reservoir_snapshot(redis_client, batched)
    assert (a.ids, a.seen, a.marks, a.per_stream) == (b.ids, b.seen, b.marks, b.per_stream)


async def test_a_flushed_script_cache_is_reloaded_by_every_operation(
    counting_client: Callable[[], CountingClient],
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
    key_prefix: str,
    episode_factory: Factory,
) -> None:
    counting = counting_client()
    client = counting.client
    buffer = await _buffer(client, key_prefix, capacity=4)
    await client.script_flush()
    results = await buffer.add_many(_stream_of_episodes(episode_factory, 3))
    assert results == [AddResult.STORED] * 3
    counting.sends = 0
    assert await buffer.add_many([episode_factory("s1", first_offset=500)]) == ["stored"]
    assert counting.sends == 1  # loaded again, the next batch is one round trip again
    await client.script_flush()
    assert await buffer.add(episode_factory("s0", first_offset=1000)) != AddResult.DUPLICATE
    assert (await buffer.stats()).seen == 5
    await client.script_flush()
    assert len(await buffer.sample(3, sampler=StreamSampler())) == 3
    await client.script_flush()
    await buffer.clear()
    assert await buffer.stats() == (0, 0, 4, {})


async def test_clear_removes_every_key(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=5)
    await buffer.add_many(_stream_of_episodes(episode_factory, 12))
    assert [k async for k in redis_client.scan_iter(match=f"{key_prefix}*")]
    await buffer.clear()
    assert [k async for k in redis_client.scan_iter(match=f"{key_prefix}*")] == []
    assert await buffer.stats() == (0, 0, 5, {})
    assert await buffer.add(episode_factory()) == AddResult.STORED  # usable again


async def test_sample_validates_its_arguments(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    buffer = ReservoirBuffer(redis_client, prefix=key_prefix, capacity=5)
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        await buffer.sample(-1)
    with pytest.raises(TypeError, match=r"sampler must be a Sampler .*sampler_for.*got 'regime'"):
        await buffer.sample(2, sampler="regime")  # type: ignore[arg-type]


async def test_sample_runs_the_sampler_on_the_buffers_draws_and_rng(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=30, seed=4)
    await buffer.add_many(_stream_of_episodes(episode_factory, 30))
    calls: list[tuple[SlotDraws, int, random.Random]] = []

    class Recording:
        async def sample(self, draws: SlotDraws, n: int, rng: random.Random) -> list[Episode]:
            calls.append((draws, n, rng))
            return []

    mine = random.Random(1)
    assert await buffer.sample(5, sampler=Recording(), rng=mine) == []
    assert await buffer.sample(6, sampler=Recording()) == []
    assert await buffer.sample(0, sampler=Recording()) == []  # nothing to draw: not called
    assert calls == [(buffer.draws, 5, mine), (buffer.draws, 6, buffer.rng)]
    # The default is uniform sampling with the buffer's rng.
    buffer.rng = random.Random(9)
    default = await buffer.sample(7)
    uniform = await buffer.sample(7, sampler=UniformSampler(), rng=random.Random(9))
    assert [e.id for e in default] == [e.id for e in uniform]
