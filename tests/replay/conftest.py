"""Helpers shared by the replay tests: an episode factory, a full read-back of a reservoir in
Redis that checks every invariant the Lua script must maintain, and a client that counts its
round trips."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import redis.asyncio as aioredis
from replay_support import CountingClient
from scipy.stats import chi2

from adaptd.replay.episode import Episode, decode_episode
from adaptd.replay.reservoir import ReservoirBuffer
from adaptd.replay.strata import regime_key


def make_episode(
    stream: str = "s",
    first_offset: int = 0,
    *,
    n: int = 2,
    d: int = 3,
    topic: str = "t",
    partition: int = 0,
    segment: int = 0,
    regime: int = 0,
) -> Episode:
    """An episode of n examples whose offsets start at first_offset, values derived from it."""
    offsets = list(range(first_offset, first_offset + n))
    x = np.arange(n * d, dtype=np.float64).reshape(n, d) + first_offset
    return Episode.from_arrays(
        stream=stream,
        segment=segment,
        topic=topic,
        partition=partition,
        offsets=offsets,
        ts_ms=[1_700_000_000_000 + o for o in offsets],
        x=x,
        y=np.full(n, first_offset % 7, dtype=np.float64),
        regime=regime,
    )


@pytest.fixture(scope="session")
def episode_factory() -> Callable[..., Episode]:
    return make_episode


@dataclass
class Snapshot:
    capacity: int
    seen: int
    slots: dict[int, Episode]
    marks: dict[str, int]
    per_stream: dict[str, int]
    per_regime: dict[str, int]

    @property
    def ids(self) -> dict[int, str]:
        return {slot: ep.id for slot, ep in self.slots.items()}


async def read_back(client: aioredis.Redis, buffer: ReservoirBuffer) -> Snapshot:
    """Everything the reservoir holds, after asserting the invariants between its keys."""
    k = buffer.keys
    meta = await client.hgetall(k.meta)
    capacity, seen = int(meta[b"capacity"]), int(meta.get(b"seen", 0))
    size = min(seen, capacity)
    raw_slots = await client.hgetall(k.slots)
    owners = {int(s): o.decode() for s, o in (await client.hgetall(k.owners)).items()}
    counts = {s.decode(): int(c) for s, c in (await client.hgetall(k.counts)).items()}
    slots = {int(s): decode_episode(blob) for s, blob in raw_slots.items()}
    assert set(slots) == set(range(size)), "slots must be exactly 0..size-1"
    assert owners == {s: ep.stream for s, ep in slots.items()}, "owners disagree with slots"
    assert sum(counts.values()) == size
    assert all(c > 0 for c in counts.values()), "streams with no slot must be dropped"
    set_keys = {key async for key in client.scan_iter(match=f"{k.stream_prefix}*", count=1000)}
    assert set_keys == {k.stream_set(s).encode() for s in counts}, "stale per-stream sets"
    for stream, count in counts.items():
        members = await client.zrange(k.stream_set(stream), 0, -1, withscores=True)
        assert {int(m) for m, _ in members} == {s for s, o in owners.items() if o == stream}
        assert all(int(m) == int(score) for m, score in members)
        assert len(members) == count
    regimes = await _check_index(
        client, k.regime_owners, k.regime_counts, k.regime_prefix, k.regime_set,
        {s: regime_key(ep.stream, ep.regime) for s, ep in slots.items()},
    )  # fmt: skip
    marks = {s.decode(): int(v) for s, v in (await client.hgetall(k.marks)).items()}
    return Snapshot(capacity, seen, slots, marks, counts, regimes)


async def _check_index(
    client: aioredis.Redis,
    owners_key: str,
    counts_key: str,
    prefix: str,
    set_of: Callable[[str], str],
    expected: dict[int, str],
) -> dict[str, int]:
    """Assert that an owners hash, its counts and its sorted sets index ``expected`` (slot ->
    owner) exactly; returns the counts."""
    owners = {int(s): o.decode() for s, o in (await client.hgetall(owners_key)).items()}
    assert owners == expected, "regime owners disagree with the slots"
    counts = {s.decode(): int(c) for s, c in (await client.hgetall(counts_key)).items()}
    assert counts == dict(Counter(expected.values())), "regime counts disagree with owners"
    set_keys = {key async for key in client.scan_iter(match=f"{prefix}*", count=1000)}
    assert set_keys == {set_of(s).encode() for s in counts}, "stale per-regime sets"
    for owner in counts:
        members = await client.zrange(set_of(owner), 0, -1, withscores=True)
        assert {int(m) for m, _ in members} == {s for s, o in owners.items() if o == owner}
        assert all(int(m) == int(score) for m, score in members)
    return counts


ReadBack = Callable[[aioredis.Redis, ReservoirBuffer], Awaitable[Snapshot]]


@pytest.fixture(scope="session")
def reservoir_snapshot() -> ReadBack:
    """``await reservoir_snapshot(client, buffer)`` reads back and checks a reservoir."""
    return read_back


def inclusion_chi2_pvalue(counts: Sequence[int], k: int, reps: int) -> float:
    """p-value of "each of N = len(counts) items was included with probability k/N", given
    how often each was included in `reps` samples of exactly k distinct items.

    Within one sample the N inclusion indicators sum to k, so they are negatively
    correlated: Cov = p(1-p) * N/(N-1) * (I - 11'/N) with p = k/N. Scaling the Pearson
    statistic by (N-1) / (N(1-p)) makes it chi-square with N-1 degrees of freedom.
    """
    n_items = len(counts)
    p = k / n_items
    expected = reps * p
    pearson = sum((c - expected) ** 2 for c in counts) / expected
    stat = pearson * (n_items - 1) / (n_items * (1 - p))
    return float(chi2.sf(stat, n_items - 1))


@pytest.fixture(scope="session")
def inclusion_pvalue() -> Callable[[Sequence[int], int, int], float]:
    return inclusion_chi2_pvalue


@pytest.fixture
async def counting_client(redis_url: str) -> AsyncIterator[Callable[[], CountingClient]]:
    """``counting_client()`` makes a :class:`CountingClient` (closed after the test); read
    ``.sends`` after a warm-up call, since connecting costs round trips too."""
    made: list[CountingClient] = []

    def make() -> CountingClient:
        made.append(CountingClient(redis_url))
        return made[-1]

    yield make
    for counting in made:
        await counting.client.aclose()
