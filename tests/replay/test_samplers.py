"""The samplers against the real Redis: uniform over the held episodes, an equal share per
stream (or per (stream, regime): test_reservoir_regimes.py), reproducible with a seeded rng;
the registry behind ``replay.sample_strategy``; and a sampler of one's own."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass
from typing import get_args

import pytest
import redis.asyncio as aioredis
from replay_support import CountingClient
from scipy.stats import chisquare

from adaptd.replay.episode import Episode
from adaptd.replay.layout import ReservoirKeys
from adaptd.replay.reservoir import ReservoirBuffer
from adaptd.replay.samplers import (
    SAMPLERS,
    RegimeSampler,
    Sampler,
    StratifiedSampler,
    StreamSampler,
    UniformSampler,
    sampler_for,
)
from adaptd.replay.sampling import SlotDraws

Factory = Callable[..., Episode]


def _stream_of_episodes(factory: Factory, count: int, streams: int = 3) -> list[Episode]:
    return [factory(f"s{i % streams}", first_offset=10 * i) for i in range(count)]


async def _buffer(
    client: aioredis.Redis, prefix: str, capacity: int, seed: int = 0
) -> ReservoirBuffer:
    buffer = ReservoirBuffer(client, prefix=prefix, capacity=capacity, rng=random.Random(seed))
    await buffer.open()
    return buffer


def test_the_registry_maps_the_setting_names_to_one_sampler_each() -> None:
    assert dict(SAMPLERS) == {
        "uniform": UniformSampler(),
        "stratified": StreamSampler(),
        "regime": RegimeSampler(),
    }
    assert all(isinstance(s, Sampler) for s in SAMPLERS.values())
    assert sampler_for("stratified") is SAMPLERS["stratified"]
    with pytest.raises(ValueError, match=r"one of \('uniform', 'stratified', 'regime'\).*'x'"):
        sampler_for("x")
    with pytest.raises(TypeError):
        SAMPLERS["mine"] = UniformSampler()  # type: ignore[index]


def test_every_value_of_the_setting_names_a_registered_sampler() -> None:
    from adaptd.daemon.config.settings import Settings

    replay = Settings.model_fields["replay"].annotation
    assert replay is not None
    names = get_args(replay.model_fields["sample_strategy"].annotation)
    assert set(names) == set(SAMPLERS)


def test_the_stratified_samplers_index_by_stream_and_by_regime() -> None:
    keys = ReservoirKeys.for_prefix("p")
    assert StreamSampler().strata(keys) == (keys.counts, keys.stream_prefix)
    assert RegimeSampler().strata(keys) == (keys.regime_counts, keys.regime_prefix)
    with pytest.raises(TypeError):
        StratifiedSampler()  # type: ignore[abstract]
    with pytest.raises(FrozenInstanceError):
        RegimeSampler().x = 1  # type: ignore[attr-defined]


@pytest.mark.integration
async def test_uniform_sample_is_distinct_capped_and_uniform_over_slots(
    counting_client: Callable[[], CountingClient],
    redis_client: aioredis.Redis,
    key_prefix: str,
    episode_factory: Factory,
    inclusion_pvalue,
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=20)
    uniform = UniformSampler()
    assert await uniform.sample(buffer.draws, 5, random.Random(0)) == []
    await buffer.add_many(_stream_of_episodes(episode_factory, 20))
    everything = await uniform.sample(buffer.draws, 50, random.Random(0))
    assert len({ep.id for ep in everything}) == len(everything) == 20

    counting = counting_client()
    draws = SlotDraws(counting.client, buffer.keys, capacity=20)
    rng = random.Random(1)
    await uniform.sample(draws, 1, rng)  # connect first
    counting.sends = 0
    counts: Counter[str] = Counter()
    reps = 1500
    for _ in range(reps):
        drawn = await uniform.sample(draws, 5, rng)
        assert len({ep.id for ep in drawn}) == 5
        counts.update(ep.id for ep in drawn)
    assert counting.sends == reps  # one round trip per sample
    assert set(counts) == {ep.id for ep in everything}
    # Each of the 20 held episodes should be in a draw of 5 with probability 1/4.
    assert inclusion_pvalue(list(counts.values()), k=5, reps=reps) > 1e-3


@pytest.mark.integration
@pytest.mark.parametrize("name", list(SAMPLERS))
async def test_every_sampler_is_reproducible_with_a_seeded_rng(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, name: str
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=30)
    await buffer.add_many(_stream_of_episodes(episode_factory, 30))
    sampler = sampler_for(name)
    a = await sampler.sample(buffer.draws, 7, random.Random(11))
    b = await sampler.sample(buffer.draws, 7, random.Random(11))
    assert [e.id for e in a] == [e.id for e in b]
    assert len({e.id for e in a}) == 7


@pytest.mark.integration
async def test_stream_sampler_balances_streams_when_one_dominates(
    counting_client: Callable[[], CountingClient],
    redis_client: aioredis.Redis,
    key_prefix: str,
    episode_factory: Factory,
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=400)
    big = [episode_factory("big", first_offset=10 * i) for i in range(300)]
    small = [episode_factory(s, first_offset=10 * i) for s in ("a", "b") for i in range(20)]
    await buffer.add_many(big + small)
    assert (await buffer.stats()).per_stream == {"big": 300, "a": 20, "b": 20}

    uniform = Counter(ep.stream for ep in await buffer.sample(30))
    assert uniform["big"] > 15  # what stratification is for: uniform follows the holdings
    for n, expected in [(30, {"big": 10, "a": 10, "b": 10}), (90, {"big": 50, "a": 20, "b": 20})]:
        drawn = await buffer.sample(n, sampler=StreamSampler())
        assert Counter(ep.stream for ep in drawn) == expected
        assert len({ep.id for ep in drawn}) == n

    counting = counting_client()
    draws = SlotDraws(counting.client, buffer.keys, capacity=400)
    rng = random.Random(2)
    await draws.counts(buffer.keys.by_stream)  # connect first
    counting.sends = 0
    firsts: Counter[str] = Counter()
    reps = 600
    for _ in range(reps):
        drawn = await StreamSampler().sample(draws, 1, rng)
        firsts[drawn[0].stream] += 1
    assert counting.sends == 2 * reps
    # With n=1 the random stream order alone decides: each stream a third of the time.
    assert chisquare([firsts[s] for s in ("big", "a", "b")]).pvalue > 1e-3


@pytest.mark.integration
async def test_stream_sampler_after_evictions_uses_the_current_owners(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory, reservoir_snapshot
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=30, seed=5)
    episodes = [episode_factory(f"s{i % 4}", first_offset=10 * i) for i in range(400)]
    await buffer.add_many(episodes)
    snap = await reservoir_snapshot(redis_client, buffer)
    drawn = await buffer.sample(30, sampler=StreamSampler())
    assert sorted(ep.id for ep in drawn) == sorted(snap.ids.values())
    assert sorted(snap.per_stream) == ["s0", "s1", "s2", "s3"]
    assert min(snap.per_stream.values()) >= 2
    small = await buffer.sample(8, sampler=StreamSampler())
    assert Counter(ep.stream for ep in small) == dict.fromkeys(snap.per_stream, 2)


@dataclass(frozen=True)
class OneStream:
    """A sampler of one's own: uniform over one stream's episodes only."""

    stream: str

    async def sample(self, draws: SlotDraws, n: int, rng: random.Random) -> list[Episode]:
        drawn = await draws.from_strata(draws.keys.by_stream, {self.stream: n}, rng)
        return drawn[self.stream]


@pytest.mark.integration
async def test_a_sampler_of_ones_own_is_used_as_given(
    redis_client: aioredis.Redis, key_prefix: str, episode_factory: Factory
) -> None:
    buffer = await _buffer(redis_client, key_prefix, capacity=60)
    await buffer.add_many(_stream_of_episodes(episode_factory, 60))
    assert isinstance(OneStream("s1"), Sampler)
    drawn = await buffer.sample(8, sampler=OneStream("s1"))
    assert len({ep.id for ep in drawn}) == 8
    assert {ep.stream for ep in drawn} == {"s1"}
    assert len(await buffer.sample(100, sampler=OneStream("s1"))) == 20
    assert await buffer.sample(3, sampler=OneStream("nope")) == []
