"""The reservoir's reads for sampling: distinct episodes drawn in Redis (``sample.lua``) with
numbers from the caller's rng, uniformly over all held slots or over given strata.

These are the building blocks of the samplers (:mod:`adaptd.replay.samplers`), which decide
*what* to draw; this module only knows *how* to draw it from Redis. Every random number comes
from the rng passed in, so a seeded rng makes a draw reproducible (docs/replay.md).

>>> draws = SlotDraws(client, ReservoirKeys.for_prefix("adaptd"), capacity=100)  # doctest: +SKIP
>>> await draws.uniform(2, random.Random(0))                     # doctest: +SKIP
[Episode(stream='BTC-USD', ...), Episode(stream='ETH-USD', ...)]
>>> await draws.counts(draws.keys.by_regime)                      # doctest: +SKIP
{'BTC-USD:0': 60, 'BTC-USD:1': 4, 'ETH-USD:0': 36}
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import redis.asyncio as aioredis

from .client import as_text
from .episode import Episode, decode_episode
from .layout import ReservoirKeys, Strata
from .scripts import lua_source

__all__ = ["SlotDraws"]


class SlotDraws:
    """Draws distinct episodes from one reservoir in Redis, each draw one atomic script call.

    Parameters
    ----------
    client
        A ``redis.asyncio.Redis`` with ``decode_responses=False``; not closed here.
    keys
        The reservoir's keys.
    capacity
        The reservoir's capacity: a uniform draw never asks for more.
    """

    def __init__(self, client: aioredis.Redis, keys: ReservoirKeys, *, capacity: int) -> None:
        self.client = client
        self.keys = keys
        self.capacity = capacity
        self._script = client.register_script(lua_source("sample.lua"))

    async def uniform(self, n: int, rng: random.Random) -> list[Episode]:
        """Up to ``n`` distinct held episodes, every subset equally likely (one round trip)."""
        # The reservoir never holds more than capacity, so more draws would be unused.
        args = ["uniform", *(repr(rng.random()) for _ in range(min(n, self.capacity)))]
        (blobs,) = await self._script(keys=[self.keys.meta, self.keys.slots], args=args)
        return [decode_episode(blob) for blob in blobs]

    async def counts(self, strata: Strata) -> dict[str, int]:
        """Slots held per stratum of ``strata`` right now (one round trip)."""
        held = await self.client.hgetall(strata.counts)
        return {as_text(stratum): int(count) for stratum, count in held.items()}

    async def from_strata(
        self, strata: Strata, wanted: Mapping[str, int], rng: random.Random
    ) -> dict[str, list[Episode]]:
        """``wanted[s]`` distinct episodes of each stratum ``s``, drawn uniformly within it
        from its set as it is when the script runs (fewer if it holds fewer by then; one
        round trip). Floats are drawn stratum after stratum, in ``wanted``'s order."""
        chosen = list(wanted)
        if not chosen:
            return {}
        args = ["stratified", *(str(wanted[s]) for s in chosen)]
        args += [repr(rng.random()) for s in chosen for _ in range(wanted[s])]
        keys = [self.keys.meta, self.keys.slots, *(strata.set_of(s) for s in chosen)]
        groups = await self._script(keys=keys, args=args)
        return {
            s: [decode_episode(blob) for blob in group]
            for s, group in zip(chosen, groups, strict=True)
        }
