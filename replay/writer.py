"""The reservoir's add path: each episode offered through ``reservoir.lua`` (the watermark,
Algorithm R and both slot indexes, atomically), a batch of them in one script call.

The client draws each episode's uniform number ``u`` (docs/replay.md, "Why the client draws
the random numbers") and sends it with ``repr``, which round-trips the float exactly, so
Lua's ``floor(u * n)`` equals Python's.

>>> print(capacity_mismatch("adaptd", stored=5, requested=7))
Redis already holds a reservoir under prefix 'adaptd' with capacity 5, but this buffer was
created with capacity 7; use capacity=5 or clear() the reservoir
>>> writer = ReservoirWriter(client, prefix="adaptd", capacity=100)  # doctest: +SKIP
>>> await writer.add_many([episode], random.Random(0))             # doctest: +SKIP
[<AddResult.STORED: 'stored'>]
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from adaptd.adapters.checks import int_at_least

from .client import as_text, check_binary_client
from .episode import Episode, encode_episode
from .layout import AddResult, ReservoirKeys
from .scripts import BatchScript, Call, lua_source
from .strata import regime_key

__all__ = ["ReservoirWriter", "capacity_mismatch"]

_CAPACITY_MISMATCH = re.compile(r"reservoir capacity mismatch: stored (\d+), requested (\d+)")


def capacity_mismatch(prefix: str, stored: int, requested: int) -> ValueError:
    """The error for a buffer of capacity ``requested`` on a reservoir stored with ``stored``."""
    return ValueError(
        f"Redis already holds a reservoir under prefix {prefix!r} with capacity "
        f"{stored}, but this buffer was created with capacity {requested}; "
        f"use capacity={stored} or clear() the reservoir"
    )


class ReservoirWriter:
    """Offers episodes to one reservoir in Redis; every batch is one atomic script call.

    Parameters
    ----------
    client
        A ``redis.asyncio.Redis`` with ``decode_responses=False``; not closed here.
    prefix
        The reservoir's key prefix (see :class:`ReservoirKeys`).
    capacity
        Sent with every add: the script stores it on first use and refuses a different one.
    """

    def __init__(self, client: aioredis.Redis, *, prefix: str, capacity: int) -> None:
        self.keys = ReservoirKeys.for_prefix(prefix)
        int_at_least("capacity", capacity, 1)
        check_binary_client(client)
        self.prefix = prefix
        self.capacity = capacity
        self._script = BatchScript(client, lua_source("reservoir.lua"))

    async def add_many(self, episodes: Sequence[Episode], rng: random.Random) -> list[AddResult]:
        """The outcome of each episode, in order, as if each were added alone in turn.

        Raises the capacity error (ValueError) if the stored capacity differs, and any other
        error reply (e.g. ``OutOfMemoryError``) with the episodes before it applied.
        """
        calls = [self._call(episode, rng) for episode in episodes]
        try:
            replies = await self._script(calls)
        except ResponseError as exc:
            match = _CAPACITY_MISMATCH.search(str(exc))
            if match is None:
                raise
            raise capacity_mismatch(self.prefix, int(match.group(1)), self.capacity) from exc
        return [AddResult(as_text(reply)) for reply in replies]

    def _call(self, episode: Episode, rng: random.Random) -> Call:
        k = self.keys
        group = regime_key(episode.stream, episode.regime)
        keys = [
            k.meta,
            k.marks,
            k.slots,
            k.owners,
            k.counts,
            k.stream_set(episode.stream),
            k.regime_owners,
            k.regime_counts,
            k.regime_set(group),
        ]
        args: list[str | bytes] = [
            str(self.capacity),
            episode.source,
            str(episode.last_offset),
            episode.stream,
            encode_episode(episode),
            repr(rng.random()),
            k.stream_prefix,
            group,
            k.regime_prefix,
        ]
        return keys, args
