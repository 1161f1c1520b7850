"""HoldoutStore against the real Redis: the first episodes of each (stream, regime) are held,
redelivery is recognised, the regime cap evicts the least recently offered regime with its
references, and the first reference recorded stays."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from replay_support import CountingClient

from adaptd.replay.episode import Episode
from adaptd.replay.holdout import HoldoutKeys, HoldoutStore
from adaptd.replay.reservoir import ReservoirBuffer

pytestmark = pytest.mark.integration

Factory = Callable[..., Episode]


async def _store(client: aioredis.Redis, prefix: str, **kwargs: int) -> HoldoutStore:
    options = {"per_regime": 2, "max_regimes": 3, "min_examples": 4} | kwargs
    store = HoldoutStore(client, prefix=prefix, **options)
    await store.open()
    return store


def _run(factory: Factory, stream: str, regime: int, count: int, start: int = 0, n: int = 6):
    return [factory(stream, first_offset=start + 10 * i, n=n, regime=regime) for i in range(count)]


async def _keys(client: aioredis.Redis, prefix: str) -> set[str]:
    return {k.decode() async for k in client.scan_iter(match=f"{prefix}*")}


async def test_the_first_long_enough_episodes_of_each_regime_are_held(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    store = await _store(redis_client, key_prefix)
    short = episode_factory("a", first_offset=0, n=3, regime=0)  # below min_examples
    batch = [short, *_run(episode_factory, "a", 0, 4, start=100)]
    batch += _run(episode_factory, "a", 1, 1, start=500) + _run(episode_factory, "b", 0, 3)
    held = await store.offer_many(batch)
    assert held == [False, True, True, False, False, True, True, True, False]
    regimes = {r.key: r for r in await store.held()}
    assert set(regimes) == {"a:0", "a:1", "b:0"}
    assert [e.id for e in regimes["a:0"].episodes] == [batch[1].id, batch[2].id]
    assert (regimes["a:1"].stream, regimes["a:1"].regime) == ("a", 1)
    assert all(r.reference == {} for r in regimes.values())
    # A later episode of a regime that is not full yet is still held.
    late = episode_factory("a", first_offset=900, n=6, regime=1)
    assert await store.offer_many([late]) == [True]


async def test_a_redelivered_batch_gets_the_same_answers(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    store = await _store(redis_client, key_prefix)
    batch = _run(episode_factory, "a", 0, 4)
    first = await store.offer_many(batch)
    again = await store.offer_many(batch)
    assert first == again == [True, True, False, False]
    (regime,) = await store.held()
    assert len(regime.episodes) == 2


async def test_an_episode_is_held_or_trained_on_whatever_regime_it_comes_back_under(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    """Events processed again after a crash can land in another regime (seen in the SIGKILL
    recovery test): the same episode must not be held under one and trained on under another."""
    store = await _store(redis_client, key_prefix)
    held = _run(episode_factory, "a", 0, 2)
    assert await store.offer_many(held) == [True, True]
    # Regime 1 is full; the held episodes come back under it and are still held.
    await store.offer_many(_run(episode_factory, "a", 1, 2, start=500))
    again = [episode_factory("a", first_offset=e.first_offset, n=e.n, regime=1) for e in held]
    assert [e.id for e in again] == [e.id for e in held]
    assert await store.offer_many(again) == [True, True]
    assert {r.key: len(r.episodes) for r in await store.held()} == {"a:0": 2, "a:1": 2}

    # An episode the reservoir was already offered is never held afterwards, even by a
    # regime with room; a later one is.
    reservoir = ReservoirBuffer(redis_client, prefix=key_prefix, capacity=100)
    trained = episode_factory("b", first_offset=40, n=6, regime=0)
    await reservoir.add_many([trained])
    earlier = episode_factory("b", first_offset=10, n=6, regime=5)
    later = episode_factory("b", first_offset=90, n=6, regime=5)
    assert await store.offer_many([trained, earlier, later]) == [False, False, True]


async def test_the_regime_cap_evicts_the_least_recently_offered_regime_entirely(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    store = await _store(redis_client, key_prefix, max_regimes=3)
    await store.offer_many(_run(episode_factory, "a", 0, 2) + _run(episode_factory, "a", 1, 1, 100))
    await store.offer_many(_run(episode_factory, "b", 0, 1))
    await store.set_references({"a:0": {e.id: 1.0 for e in (await store.held())[0].episodes}})
    # a:0 is full, but offering it another episode makes it the most recently seen regime.
    assert await store.offer_many(_run(episode_factory, "a", 0, 1, start=50)) == [False]
    assert await store.offer_many(_run(episode_factory, "c", 7, 1)) == [True]
    keys = {r.key for r in await store.held()}
    assert keys == {"a:0", "b:0", "c:7"}  # a:1 was offered least recently
    k = HoldoutKeys.for_prefix(key_prefix)
    assert k.episodes("a:1") not in await _keys(redis_client, key_prefix)
    # Evicting a regime takes its references with it.
    await store.offer_many(_run(episode_factory, "d", 0, 1) + _run(episode_factory, "e", 0, 1))
    assert {r.key for r in await store.held()} == {"c:7", "d:0", "e:0"}
    left = await _keys(redis_client, key_prefix)
    assert not any(name.endswith(("a:0", "b:0", "a:1")) for name in left), left
    ids = await redis_client.hgetall(k.ids)
    assert {v.decode() for v in ids.values()} == {"c:7", "d:0", "e:0"}


async def test_the_first_reference_recorded_stays(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    store = await _store(redis_client, key_prefix)
    one, two = _run(episode_factory, "a", 0, 2)
    await store.offer_many([one, two])
    assert await store.set_references({"a:0": {one.id: 0.5}}) == 1
    assert await store.set_references({"a:0": {one.id: 9.0, two.id: 0.25}}) == 1
    (regime,) = await store.held()
    assert regime.reference == {one.id: 0.5, two.id: 0.25}
    # Not held (never, or evicted): no reference, and no orphaned key.
    assert await store.set_references({"z:0": {"nope": 1.0}, "a:0": {"other": 1.0}}) == 0
    assert HoldoutKeys.for_prefix(key_prefix).reference("z:0") not in await _keys(
        redis_client, key_prefix
    )
    assert await store.set_references({}) == 0


async def test_clear_removes_every_key(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    store = await _store(redis_client, key_prefix)
    batch = _run(episode_factory, "a", 0, 2) + _run(episode_factory, "b", 3, 2)
    await store.offer_many(batch)
    await store.set_references({"a:0": {batch[0].id: 1.0}})
    await store.clear()
    assert await _keys(redis_client, key_prefix) == set()
    assert await store.held() == []
    assert await store.offer_many(batch[:1]) == [True]


async def test_a_batch_is_one_round_trip_and_a_flushed_script_cache_is_reloaded(
    counting_client: Callable[[], CountingClient],
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
    key_prefix: str,
    episode_factory: Factory,
) -> None:
    counting = counting_client()
    store = await _store(counting.client, key_prefix)
    await counting.client.script_flush()
    assert await store.offer_many(_run(episode_factory, "a", 0, 3)) == [True, True, False]
    counting.sends = 0
    batch = [*_run(episode_factory, "b", 0, 3), episode_factory("c", n=2)]  # c is too short
    assert await store.offer_many(batch) == [True, True, False, False]
    assert counting.sends == 1
    await counting.client.script_flush()
    assert await store.set_references({"b:0": {batch[0].id: 0.5}}) == 1
    assert await store.offer_many([episode_factory("c", n=2)]) == [False]  # no call at all
    assert counting.sends == 1 + 1 + 3  # the flush; EVALSHA, NOSCRIPT: SCRIPT LOAD, EVALSHA


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"per_regime": 0}, "per_regime"),
        ({"max_regimes": 0}, "max_regimes"),
        ({"min_examples": 1}, "min_examples"),
        ({"prefix": "a{b}"}, "prefix"),
    ],
)
def test_arguments_are_checked_and_named(kwargs: dict, named: str) -> None:
    client = aioredis.Redis()
    options = {"prefix": "p", "per_regime": 2, "max_regimes": 3} | kwargs
    with pytest.raises(ValueError, match=named):
        HoldoutStore(client, **options)
