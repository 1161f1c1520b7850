"""Held-out episodes per (stream, regime), kept in Redis beside the reservoir, to measure
how much of each regime the daemon retains.

The first ``per_regime`` episodes of every (stream, regime) that have at least
``min_examples`` examples are *held out*: the store keeps them and the daemon does not offer
them to the training reservoir, so meta-training never sees them. Each offer is one Lua
script (``holdout.lua``), atomic and idempotent: a redelivered held episode is held again (and
so again kept from the reservoir), whatever regime it is offered under the second time (events
processed again after a crash can be classified differently); an episode the reservoir was
already offered passes (it has been trained on), and so does a later episode of a full regime.
The store is bounded: at most ``max_regimes`` regimes, and beyond that the regime offered an
episode least recently is forgotten (LRU), its episodes and references with it. A regime that
was forgotten and comes back has its first episodes since then held out afresh.

Next to each held episode the store keeps its *reference loss*: the first evaluation recorded
for it (``holdout_reference.lua`` writes a loss only if none is stored), which survives
restarts. Key layout: docs/replay.md.

>>> HoldoutKeys.for_prefix("adaptd").episodes("BTC-USD:2")
'adaptd:holdout:{adaptd}:episodes:BTC-USD:2'
>>> store = HoldoutStore(client, prefix="adaptd", per_regime=2, max_regimes=64)  # doctest: +SKIP
>>> await store.offer_many(episodes)           # doctest: +SKIP
[True, True, False, ...]
>>> [(r.key, len(r.episodes)) for r in await store.held()]  # doctest: +SKIP
[('BTC-USD:0', 2), ...]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import redis.asyncio as aioredis

from adaptd.adapters.checks import int_at_least

from .client import as_text, check_binary_client
from .episode import Episode, decode_episode, encode_episode
from .layout import ReservoirKeys, check_prefix
from .scripts import BatchScript, Call, lua_source
from .strata import regime_key, split_regime_key

__all__ = ["HeldRegime", "HoldoutKeys", "HoldoutStore"]


class HoldoutKeys(NamedTuple):
    """The Redis keys of one held-out store; all share the ``{prefix}`` hash tag."""

    meta: str
    lru: str
    ids: str
    """Episode id -> ``stream:regime`` of every held episode."""
    episodes_prefix: str
    reference_prefix: str
    reservoir_marks: str
    """The reservoir's watermarks: an episode it was offered is never held afterwards."""

    @classmethod
    def for_prefix(cls, prefix: str) -> HoldoutKeys:
        base = f"{check_prefix(prefix)}:holdout:{{{prefix}}}"
        return cls(
            meta=f"{base}:meta",
            lru=f"{base}:lru",
            ids=f"{base}:ids",
            episodes_prefix=f"{base}:episodes:",
            reference_prefix=f"{base}:reference:",
            reservoir_marks=ReservoirKeys.for_prefix(prefix).marks,
        )

    def episodes(self, key: str) -> str:
        """The hash of episode id -> encoded episode of the (stream, regime) ``key``."""
        return self.episodes_prefix + key

    def reference(self, key: str) -> str:
        """The hash of episode id -> reference loss of the (stream, regime) ``key``."""
        return self.reference_prefix + key


class HeldRegime(NamedTuple):
    """The held-out episodes of one (stream, regime) and their reference losses."""

    key: str
    """``"{stream}:{regime}"``."""
    stream: str
    regime: int
    episodes: tuple[Episode, ...]
    """In the order of their source offsets."""
    reference: dict[str, float]
    """Episode id -> reference loss, for the episodes that have one."""


class HoldoutStore:
    """The first episodes of every (stream, regime), kept from training, with reference losses.

    Parameters
    ----------
    client
        A ``redis.asyncio.Redis`` with ``decode_responses=False``; not closed by the store.
    prefix
        Key prefix; the keys are ``{prefix}:holdout:{{prefix}}:...``.
    per_regime
        Episodes held per (stream, regime): its first ones that are long enough.
    max_regimes
        Most (stream, regime) pairs held; beyond it, least recently offered goes (LRU).
    min_examples
        Shorter episodes are never held (they always pass to training).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        per_regime: int,
        max_regimes: int,
        min_examples: int = 2,
    ) -> None:
        self.keys = HoldoutKeys.for_prefix(prefix)
        for name, value, least in (
            ("per_regime", per_regime, 1),
            ("max_regimes", max_regimes, 1),
            ("min_examples", min_examples, 2),
        ):
            int_at_least(name, value, least)
        self.client = check_binary_client(client)
        self.prefix = prefix
        self.per_regime = per_regime
        self.max_regimes = max_regimes
        self.min_examples = min_examples
        self._offer_script = BatchScript(client, lua_source("holdout.lua"))
        self._reference_script = client.register_script(lua_source("holdout_reference.lua"))

    async def open(self) -> None:
        """Nothing to prepare: redis-py's ``Script`` sends a script whenever Redis lacks it.
        Kept so that the store is opened like the reservoir."""

    async def offer_many(self, episodes: Sequence[Episode]) -> list[bool]:
        """Offer episodes in order, in one round trip (one atomic script call); True for each
        one that is held out, which the caller must then keep from training. Resending a
        batch gives the same answers (held episodes are recognised by id)."""
        offered = [i for i, ep in enumerate(episodes) if ep.n >= self.min_examples]
        replies = await self._offer_script([self._offer(episodes[i]) for i in offered])
        held = [False] * len(episodes)
        for i, reply in zip(offered, replies, strict=True):
            held[i] = as_text(reply) == "held"
        return held

    async def held(self) -> list[HeldRegime]:
        """Every held regime, least recently offered first, with its episodes and
        references (two round trips)."""
        keys = [as_text(k) for k in await self.client.zrange(self.keys.lru, 0, -1)]
        if not keys:
            return []
        async with self.client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.hgetall(self.keys.episodes(key))
                pipe.hgetall(self.keys.reference(key))
            replies = await pipe.execute()
        out = []
        for i, key in enumerate(keys):
            blobs, refs = replies[2 * i], replies[2 * i + 1]
            if not blobs:
                continue  # evicted between the two round trips
            episodes = sorted((decode_episode(b) for b in blobs.values()), key=_order)
            stream, regime = split_regime_key(key)
            reference = {as_text(k): float(v) for k, v in refs.items()}
            out.append(HeldRegime(key, stream, regime, tuple(episodes), reference))
        return out

    async def set_references(self, losses: Mapping[str, Mapping[str, float]]) -> int:
        """Record ``{regime key: {episode id: loss}}`` as reference losses where none is
        stored yet (and the episode is still held); returns how many were new."""
        args: list[str] = [self.keys.episodes_prefix, self.keys.reference_prefix]
        for key, by_id in losses.items():
            for episode_id, loss in by_id.items():
                args += [key, episode_id, repr(float(loss))]
        if len(args) == 2:
            return 0
        return int(await self._reference_script(keys=[self.keys.lru], args=args))

    async def clear(self) -> None:
        """Delete every held episode, reference and the LRU order."""
        keys = [as_text(k) for k in await self.client.zrange(self.keys.lru, 0, -1)]
        names = [self.keys.meta, self.keys.lru, self.keys.ids]
        names += [self.keys.episodes(k) for k in keys] + [self.keys.reference(k) for k in keys]
        await self.client.delete(*names)

    def _offer(self, episode: Episode) -> Call:
        k = self.keys
        key = regime_key(episode.stream, episode.regime)
        args = [
            key,
            episode.id,
            encode_episode(episode),
            str(self.per_regime),
            str(self.max_regimes),
            k.episodes_prefix,
            k.reference_prefix,
            episode.source,
            str(episode.last_offset),
        ]
        return [k.meta, k.lru, k.episodes(key), k.ids, k.reservoir_marks], args


def _order(episode: Episode) -> tuple[str, int]:
    return episode.source, episode.last_offset
