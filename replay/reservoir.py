"""A Redis reservoir of episodes: Algorithm R, idempotent against redelivery, per-stream and
per-regime indexes.

Each add runs the Lua script ``reservoir.lua``, atomically: it drops an episode whose source
already delivered an equal or later ``last_offset`` (a redelivery after a crash), counts the
rest in ``seen``, keeps a uniform sample of at most ``capacity`` of them, and indexes which
stream, and which (stream, regime), owns each slot so that sampling can be stratified by
either. The buffer puts together the add path (:mod:`~adaptd.replay.writer`) and the draws
that injected samplers (:mod:`~adaptd.replay.samplers`) are built from. Key layout,
algorithm, guarantees and the Redis settings to run it with: docs/replay.md.

>>> ReservoirKeys.for_prefix("adaptd").slots
'adaptd:reservoir:{adaptd}:slots'
>>> buffer = ReservoirBuffer(client, prefix="adaptd", capacity=10_000)  # doctest: +SKIP
>>> await buffer.open()                                       # doctest: +SKIP
>>> await buffer.add(episode)                                 # doctest: +SKIP
<AddResult.STORED: 'stored'>
>>> await buffer.sample(8, sampler=RegimeSampler())           # doctest: +SKIP
[Episode(stream='BTC-USD', ...), ...]
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import redis.asyncio as aioredis

from adaptd.adapters.checks import int_at_least

from .client import as_text
from .episode import Episode, decode_episode
from .layout import AddResult, ReservoirKeys, ReservoirStats
from .samplers import Sampler, UniformSampler
from .sampling import SlotDraws
from .scripts import lua_source
from .strata import regime_key
from .writer import ReservoirWriter, capacity_mismatch

__all__ = ["AddResult", "ReservoirBuffer", "ReservoirKeys", "ReservoirStats"]

_INDEX_CHUNK = 500
_UNIFORM = UniformSampler()


class ReservoirBuffer:
    """A bounded, uniform sample of all distinct episodes ever offered, kept in Redis.

    Parameters
    ----------
    client
        A ``redis.asyncio.Redis`` created with ``decode_responses=False`` (episodes are
        binary). The buffer does not close it.
    prefix
        Key prefix; the reservoir's keys are ``{prefix}:reservoir:{{prefix}}:...``.
    capacity
        Most episodes held. It is stored in Redis on first use and must not change.
    rng
        Source of the uniform numbers of Algorithm R and of sampling; seed it for a
        reproducible run. Defaults to a fresh ``random.Random()``.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        capacity: int,
        rng: random.Random | None = None,
    ) -> None:
        # The writer checks the prefix, the capacity and the client.
        self.writer = ReservoirWriter(client, prefix=prefix, capacity=capacity)
        self.client = client
        self.prefix = prefix
        self.capacity = capacity
        self.rng = rng if rng is not None else random.Random()
        self.keys = self.writer.keys
        self.draws = SlotDraws(client, self.keys, capacity=capacity)
        # register_script only hashes the source; redis-py sends it when Redis lacks it.
        self._clear_script = client.register_script(lua_source("clear.lua"))
        self._index_script = client.register_script(lua_source("index.lua"))

    async def open(self) -> None:
        """Claim the capacity, or check it against the stored one; index by regime the
        episodes a reservoir from before the regime index holds.

        Raises ValueError naming both capacities if Redis already holds this prefix's
        reservoir with a different capacity.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.keys.meta, "capacity", self.capacity)
            pipe.hmget(self.keys.meta, "capacity", "regime_index")
            _, (stored, indexed) = await pipe.execute()
        if int(stored) != self.capacity:
            raise capacity_mismatch(self.prefix, int(stored), self.capacity)
        if indexed is None:
            await self._index_regimes()

    async def add(self, episode: Episode) -> AddResult:
        """Offer one episode; see :class:`AddResult` for the outcomes."""
        (result,) = await self.writer.add_many([episode], self.rng)
        return result

    async def add_many(self, episodes: Sequence[Episode]) -> list[AddResult]:
        """Offer episodes in order, in one round trip; the same results as adding one by one.

        The batch is one script call: no other command runs in between, and a script cache
        flushed meanwhile only makes redis-py load the script and call again. If an item
        fails (e.g. Redis is out of memory), the items before it stay applied and the error
        is raised; resending the batch is safe (they are duplicates).
        """
        return await self.writer.add_many(episodes, self.rng)

    async def sample(
        self,
        n: int,
        *,
        sampler: Sampler = _UNIFORM,
        rng: random.Random | None = None,
    ) -> list[Episode]:
        """Up to ``n`` distinct episodes chosen by ``sampler``; fewer only if the reservoir
        holds fewer.

        ``sampler`` is a :class:`~adaptd.replay.samplers.Sampler`: ``UniformSampler()`` (the
        default), ``StreamSampler()``, ``RegimeSampler()``, one from ``sampler_for(name)``,
        or your own. ``rng`` defaults to the buffer's.
        """
        int_at_least("n", n, 0)
        if not isinstance(sampler, Sampler):
            raise TypeError(
                f"sampler must be a Sampler such as RegimeSampler() or sampler_for(name), "
                f"got {sampler!r}"
            )
        if n == 0:
            return []
        return await sampler.sample(self.draws, n, rng if rng is not None else self.rng)

    async def stats(self) -> ReservoirStats:
        """Size, seen count, capacity and per-stream counts, read in one transaction."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(self.keys.meta, "capacity", "seen")
            pipe.hgetall(self.keys.counts)
            (capacity, seen), counts = await pipe.execute()
        capacity = int(capacity) if capacity is not None else self.capacity
        seen = int(seen) if seen is not None else 0
        per_stream = {as_text(k): int(v) for k, v in counts.items()}
        return ReservoirStats(min(seen, capacity), seen, capacity, per_stream)

    async def clear(self) -> None:
        """Delete every episode, watermark, count and index, and the stored capacity."""
        k = self.keys
        await self._clear_script(
            keys=[k.meta, k.marks, k.slots, k.owners, k.counts, k.regime_owners, k.regime_counts],
            args=[k.stream_prefix, k.regime_prefix],
        )

    async def _index_regimes(self) -> None:
        """File every held episode that has no (stream, regime) owner yet under its regime,
        then mark the reservoir as indexed. Reservoirs written before the regime index
        existed get it here; the script skips slots an add has indexed meanwhile, so
        several daemons opening at once are harmless."""
        k = self.keys
        cursor = 0
        while True:
            cursor, chunk = await self.client.hscan(k.slots, cursor, count=_INDEX_CHUNK)
            pairs: list[str] = []
            for field, blob in chunk.items():
                episode = decode_episode(blob)
                pairs += [as_text(field), regime_key(episode.stream, episode.regime)]
            if pairs:
                await self._index_script(
                    keys=[k.meta, k.slots, k.regime_owners, k.regime_counts],
                    args=[k.regime_prefix, "0", *pairs],
                )
            if cursor == 0:
                break
        await self._index_script(
            keys=[k.meta, k.slots, k.regime_owners, k.regime_counts],
            args=[k.regime_prefix, "1"],
        )
