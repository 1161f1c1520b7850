"""SlotDraws against the real Redis: uniform draws capped by the capacity, the counts of a
stratification, and draws from given strata, all with the caller's random numbers."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from adaptd.replay.episode import Episode
from adaptd.replay.layout import ReservoirKeys
from adaptd.replay.reservoir import ReservoirBuffer
from adaptd.replay.sampling import SlotDraws

pytestmark = pytest.mark.integration

Factory = Callable[..., Episode]


async def _filled(
    client: aioredis.Redis, prefix: str, factory: Factory, layout: dict[tuple[str, int], int]
) -> ReservoirBuffer:
    buffer = ReservoirBuffer(client, prefix=prefix, capacity=100, rng=random.Random(0))
    offset = 0
    for (stream, regime), count in layout.items():
        for _ in range(count):
            await buffer.add(factory(stream, first_offset=offset, regime=regime))
            offset += 10
    return buffer


async def test_uniform_draws_at_most_capacity_numbers_and_distinct_episodes(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _filled(redis_client, key_prefix, episode_factory, {("a", 0): 5})
    draws = SlotDraws(redis_client, buffer.keys, capacity=5)
    rng, twin = random.Random(3), random.Random(3)
    drawn = await draws.uniform(1_000, rng)
    assert len({ep.id for ep in drawn}) == 5
    assert [ep.id for ep in await draws.uniform(5, twin)] == [ep.id for ep in drawn]
    # Only capacity numbers were drawn for the 1,000 asked: both rngs are in step again.
    assert rng.random() == twin.random()
    empty = SlotDraws(redis_client, ReservoirKeys.for_prefix(f"{key_prefix}-none"), capacity=5)
    assert await empty.uniform(3, rng) == []


async def test_counts_and_draws_by_stratum(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    layout = {("a", 0): 6, ("a", 1): 2, ("b", 0): 3}
    buffer = await _filled(redis_client, key_prefix, episode_factory, layout)
    draws = buffer.draws
    assert await draws.counts(buffer.keys.by_stream) == {"a": 8, "b": 3}
    assert await draws.counts(buffer.keys.by_regime) == {"a:0": 6, "a:1": 2, "b:0": 3}

    drawn = await draws.from_strata(buffer.keys.by_regime, {"a:1": 5, "a:0": 4}, random.Random(1))
    assert list(drawn) == ["a:1", "a:0"]
    assert [ep.regime for ep in drawn["a:1"]] == [1, 1]  # it holds only two
    assert len({ep.id for ep in drawn["a:0"]}) == 4
    assert all((ep.stream, ep.regime) == ("a", 0) for ep in drawn["a:0"])
    assert await draws.from_strata(buffer.keys.by_stream, {}, random.Random(1)) == {}
    again = await draws.from_strata(buffer.keys.by_regime, {"a:1": 5, "a:0": 4}, random.Random(1))
    assert again == drawn
