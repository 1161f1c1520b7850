"""A Redis reservoir of episodes: Algorithm R, idempotent against redelivery, per-stream index.

Each add is one Lua script (``reservoir.lua``) run atomically by Redis: it drops an episode
whose source already delivered an equal or later ``last_offset`` (a redelivery after a
crash), counts the rest in ``seen``, keeps a uniform sample of at most ``capacity`` of them,
and indexes which stream owns each slot so that sampling can be stratified by stream.
Key layout, algorithm, guarantees and the Redis settings to run it with: docs/replay.md.

>>> ReservoirKeys.for_prefix("adaptd").slots
'adaptd:reservoir:{adaptd}:slots'
>>> buffer = ReservoirBuffer(client, prefix="adaptd", capacity=10_000)  # doctest: +SKIP
>>> await buffer.open()                                       # doctest: +SKIP
>>> await buffer.add(episode)                                 # doctest: +SKIP
<AddResult.STORED: 'stored'>
>>> await buffer.sample(8, strategy="stratified")             # doctest: +SKIP
[Episode(stream='BTC-USD', ...), ...]
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from typing import Literal, NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from .episode import Episode, decode_episode, encode_episode

SampleStrategy = Literal["uniform", "stratified"]

_CAPACITY_MISMATCH = re.compile(r"reservoir capacity mismatch: stored (\d+), requested (\d+)")


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


class AddResult(StrEnum):
    """What :meth:`ReservoirBuffer.add` did with an episode."""

    STORED = "stored"
    """Counted and put in a slot (possibly evicting another episode)."""
    SKIPPED = "skipped"
    """Counted in ``seen`` but not kept (Algorithm R drew a position beyond capacity)."""
    DUPLICATE = "duplicate"
    """Its source already delivered this or a later offset: nothing changed."""


class ReservoirStats(NamedTuple):
    """The reservoir as Redis holds it right now."""

    size: int
    """Episodes held: ``min(seen, capacity)``."""
    seen: int
    """Distinct episodes ever offered (duplicates excluded)."""
    capacity: int
    per_stream: dict[str, int]
    """Episodes held per stream; sums to ``size``."""


class ReservoirKeys(NamedTuple):
    """The Redis keys of one reservoir; all share the ``{prefix}`` hash tag."""

    meta: str
    marks: str
    slots: str
    owners: str
    counts: str
    stream_prefix: str

    @classmethod
    def for_prefix(cls, prefix: str) -> ReservoirKeys:
        # The braces make the prefix the hash tag: in a Redis Cluster every key of one
        # reservoir maps to one hash slot, which a multi-key script requires.
        base = f"{prefix}:reservoir:{{{prefix}}}"
        return cls(
            meta=f"{base}:meta",
            marks=f"{base}:marks",
            slots=f"{base}:slots",
            owners=f"{base}:owners",
            counts=f"{base}:counts",
            stream_prefix=f"{base}:stream:",
        )

    def stream_set(self, stream: str) -> str:
        """The sorted set of slot indices owned by ``stream``."""
        return self.stream_prefix + stream


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
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be non-empty and free of braces, got {prefix!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the Redis client must use decode_responses=False")
        self.client = client
        self.prefix = prefix
        self.capacity = capacity
        self.rng = rng if rng is not None else random.Random()
        self.keys = ReservoirKeys.for_prefix(prefix)
        # register_script only hashes the source; the server sees it on first use.
        self._add_script = client.register_script(_lua("reservoir.lua"))
        self._sample_script = client.register_script(_lua("sample.lua"))
        self._clear_script = client.register_script(_lua("clear.lua"))

    async def open(self) -> None:
        """Load the scripts and claim the capacity, or check it against the stored one.

        Raises ValueError naming both capacities if Redis already holds this prefix's
        reservoir with a different capacity.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            for script in (self._add_script, self._sample_script, self._clear_script):
                pipe.script_load(script.script)
            pipe.hsetnx(self.keys.meta, "capacity", self.capacity)
            pipe.hget(self.keys.meta, "capacity")
            *_, stored = await pipe.execute()
        if int(stored) != self.capacity:
            raise self._mismatch(int(stored))

    async def add(self, episode: Episode) -> AddResult:
        """Offer one episode; see :class:`AddResult` for the outcomes."""
        keys, args = self._add_call(episode)
        try:
            reply = await self._add_script(keys=keys, args=args)
        except ResponseError as exc:
            mismatch = self._capacity_error(exc)
            if mismatch is None:
                raise
            raise mismatch from exc
        return AddResult(_text(reply))

    async def add_many(self, episodes: Sequence[Episode]) -> list[AddResult]:
        """Offer episodes in order, in one round trip; the same results as adding one by one.

        The scripts run inside one MULTI/EXEC: no other command runs in between, and a
        script cache flushed meanwhile fails every item alike (the batch is then resent).
        If an item fails otherwise (e.g. Redis is out of memory), the items before it stay
        applied and the error is raised; resending the batch is safe (they are duplicates).
        """
        if not episodes:
            return []
        calls = [self._add_call(ep) for ep in episodes]
        replies = await self._run_add_batch(calls)
        if all(isinstance(r, NoScriptError) for r in replies):
            await self.client.script_load(self._add_script.script)
            replies = await self._run_add_batch(calls)
        results = []
        for reply in replies:
            if isinstance(reply, Exception):
                mismatch = self._capacity_error(reply)
                if mismatch is None:
                    raise reply
                raise mismatch from reply
            results.append(AddResult(_text(reply)))
        return results

    async def sample(
        self,
        n: int,
        *,
        strategy: SampleStrategy = "uniform",
        rng: random.Random | None = None,
    ) -> list[Episode]:
        """Up to ``n`` distinct episodes; fewer only if the reservoir holds fewer.

        ``uniform``: every subset of the held episodes is equally likely (one round trip).
        ``stratified``: the streams are visited round-robin in a random order, one episode
        per visit, drawn uniformly from that stream's episodes not yet taken; a stream that
        runs out is passed over. Even when one stream dominates the reservoir, every stream
        gets ``n // streams`` or one more, as far as it holds that many (two round trips;
        if writers evict a stream's episodes between them it may give fewer).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        if strategy not in ("uniform", "stratified"):
            raise ValueError(f"strategy must be 'uniform' or 'stratified', got {strategy!r}")
        if n == 0:
            return []
        rng = rng if rng is not None else self.rng
        if strategy == "uniform":
            # The reservoir never holds more than capacity, so more draws would be unused.
            args = ["uniform", *(repr(rng.random()) for _ in range(min(n, self.capacity)))]
            (blobs,) = await self._sample_script(keys=[self.keys.meta, self.keys.slots], args=args)
            return [decode_episode(b) for b in blobs]
        return await self._sample_stratified(n, rng)

    async def stats(self) -> ReservoirStats:
        """Size, seen count, capacity and per-stream counts, read in one transaction."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(self.keys.meta, "capacity", "seen")
            pipe.hgetall(self.keys.counts)
            (capacity, seen), counts = await pipe.execute()
        capacity = int(capacity) if capacity is not None else self.capacity
        seen = int(seen) if seen is not None else 0
        per_stream = {_text(k): int(v) for k, v in counts.items()}
        return ReservoirStats(min(seen, capacity), seen, capacity, per_stream)

    async def clear(self) -> None:
        """Delete every episode, watermark and count, and the stored capacity."""
        k = self.keys
        await self._clear_script(
            keys=[k.meta, k.marks, k.slots, k.owners, k.counts], args=[k.stream_prefix]
        )

    def _add_call(self, episode: Episode) -> tuple[list[str], list[str | bytes]]:
        k = self.keys
        keys = [k.meta, k.marks, k.slots, k.owners, k.counts, k.stream_set(episode.stream)]
        args: list[str | bytes] = [
            str(self.capacity),
            episode.source,
            str(episode.last_offset),
            episode.stream,
            encode_episode(episode),
            # repr round-trips the float exactly, so Lua's floor(u * n) equals Python's.
            repr(self.rng.random()),
            k.stream_prefix,
        ]
        return keys, args

    async def _run_add_batch(self, calls: list[tuple[list[str], list[str | bytes]]]) -> list:
        sha = self._add_script.sha
        async with self.client.pipeline(transaction=True) as pipe:
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)

    async def _sample_stratified(self, n: int, rng: random.Random) -> list[Episode]:
        held = await self.client.hgetall(self.keys.counts)
        counts = {_text(s): int(c) for s, c in held.items()}
        streams = sorted(s for s, c in counts.items() if c > 0)  # sorted: seeded runs repeat
        rng.shuffle(streams)
        left = dict(counts)
        order: list[str] = []
        while len(order) < n and any(left[s] > 0 for s in streams):
            for s in streams:
                if len(order) < n and left[s] > 0:
                    order.append(s)
                    left[s] -= 1
        if not order:
            return []
        taken = {s: counts[s] - left[s] for s in streams if counts[s] > left[s]}
        chosen = list(taken)
        args: list[str] = ["stratified", *(str(taken[s]) for s in chosen)]
        args += [repr(rng.random()) for s in chosen for _ in range(taken[s])]
        keys = [self.keys.meta, self.keys.slots, *(self.keys.stream_set(s) for s in chosen)]
        groups = await self._sample_script(keys=keys, args=args)
        pending = {s: iter(group) for s, group in zip(chosen, groups, strict=True)}
        out = []
        for s in order:
            blob = next(pending[s], None)
            if blob is not None:
                out.append(decode_episode(blob))
        return out

    def _capacity_error(self, exc: Exception) -> ValueError | None:
        match = _CAPACITY_MISMATCH.search(str(exc))
        return self._mismatch(int(match.group(1))) if match else None

    def _mismatch(self, stored: int) -> ValueError:
        return ValueError(
            f"Redis already holds a reservoir under prefix {self.prefix!r} with capacity "
            f"{stored}, but this buffer was created with capacity {self.capacity}; "
            f"use capacity={stored} or clear() the reservoir"
        )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
