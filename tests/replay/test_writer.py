"""ReservoirWriter against the real Redis: its argument checks, the capacity it claims and
defends, and that a batch's random numbers come from the rng it is given. (What an add does
to the reservoir: test_reservoir.py, test_algorithm_r.py and the other reservoir tests.)"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from adaptd.replay.episode import Episode
from adaptd.replay.layout import AddResult
from adaptd.replay.writer import ReservoirWriter, capacity_mismatch

Factory = Callable[..., Episode]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 0}, "capacity must be an integer >= 1, got 0"),
        ({"capacity": True}, "capacity must be an integer >= 1, got True"),
        ({"prefix": ""}, "prefix must be non-empty"),
        ({"prefix": "a}"}, "free of braces"),
    ],
)
def test_arguments_are_checked_and_named(kwargs: dict, message: str) -> None:
    options = {"prefix": "p", "capacity": 3} | kwargs
    with pytest.raises(ValueError, match=message):
        ReservoirWriter(aioredis.Redis(), **options)


def test_a_decoding_client_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_responses=False"):
        ReservoirWriter(aioredis.Redis(decode_responses=True), prefix="p", capacity=3)


def test_the_capacity_error_names_both_capacities_and_the_way_out() -> None:
    message = str(capacity_mismatch("adaptd", stored=5, requested=7))
    assert "prefix 'adaptd' with capacity 5" in message
    assert "created with capacity 7" in message
    assert "use capacity=5 or clear() the reservoir" in message


@pytest.mark.integration
async def test_the_first_batch_claims_the_capacity_and_a_different_one_is_refused(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    writer = ReservoirWriter(redis_client, prefix=key_prefix, capacity=2)
    episodes = [episode_factory("s", first_offset=10 * i) for i in range(4)]
    results = await writer.add_many(episodes[:3], random.Random(0))
    assert results[:2] == [AddResult.STORED, AddResult.STORED]
    assert await redis_client.hget(writer.keys.meta, "capacity") == b"2"
    other = ReservoirWriter(redis_client, prefix=key_prefix, capacity=3)
    with pytest.raises(ValueError, match=r"capacity 2, but .* capacity 3") as caught:
        await other.add_many(episodes[3:], random.Random(0))
    assert "reservoir capacity mismatch" in str(caught.value.__cause__)
    assert await redis_client.hget(writer.keys.meta, "seen") == b"3"
    assert await writer.add_many([], random.Random(0)) == []


@pytest.mark.integration
async def test_the_random_numbers_come_from_the_rng_given(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    episodes = [episode_factory(f"s{i % 3}", first_offset=10 * i) for i in range(40)]
    outcomes = []
    for run in range(2):
        writer = ReservoirWriter(redis_client, prefix=f"{key_prefix}-{run}", capacity=5)
        outcomes.append(await writer.add_many(episodes, random.Random(42)))
    assert outcomes[0] == outcomes[1]
    assert AddResult.SKIPPED in outcomes[0]
    writer = ReservoirWriter(redis_client, prefix=f"{key_prefix}-2", capacity=5)
    assert await writer.add_many(episodes, random.Random(43)) != outcomes[0]
