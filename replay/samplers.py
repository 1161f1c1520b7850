"""How a batch is drawn from the reservoir: the :class:`Sampler` protocol, one class per
strategy, and the registry that maps the daemon's ``replay.sample_strategy`` names to them.

A sampler is given the reservoir's draws (:class:`~adaptd.replay.sampling.SlotDraws`), the
batch size and the rng, and decides which episodes to draw; the reservoir only runs it::

    sampler = sampler_for(settings.replay.sample_strategy)   # or RegimeSampler(), ...
    episodes = await reservoir.sample(n, sampler=sampler, rng=rng)
    # ReservoirBuffer.sample -> await sampler.sample(reservoir.draws, n, rng)

Every sampler returns at most ``n`` distinct episodes, fewer only if the reservoir holds
fewer, and takes every random number from ``rng``, so a seeded rng repeats a batch.

>>> sorted(SAMPLERS)
['regime', 'stratified', 'uniform']
>>> sampler_for("regime")
RegimeSampler()
>>> sampler_for("by_regime")
Traceback (most recent call last):
...
ValueError: sample strategy must be one of ('uniform', 'stratified', 'regime'), got 'by_regime'
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from .episode import Episode
from .layout import ReservoirKeys, Strata
from .sampling import SlotDraws
from .strata import share_out

__all__ = [
    "SAMPLERS",
    "RegimeSampler",
    "Sampler",
    "StratifiedSampler",
    "StreamSampler",
    "UniformSampler",
    "sampler_for",
]


@runtime_checkable
class Sampler(Protocol):
    """Chooses the episodes of one batch from a reservoir."""

    async def sample(self, draws: SlotDraws, n: int, rng: random.Random) -> list[Episode]:
        """Up to ``n`` distinct episodes (fewer only if the reservoir holds fewer), every
        random number taken from ``rng``."""
        ...


@dataclass(frozen=True)
class UniformSampler:
    """Every subset of the held episodes equally likely (one round trip).

    A batch then follows the holdings: a stream or regime that fills most of the reservoir
    fills most of the batch.
    """

    async def sample(self, draws: SlotDraws, n: int, rng: random.Random) -> list[Episode]:
        return await draws.uniform(n, rng)


@dataclass(frozen=True)
class StratifiedSampler(ABC):
    """An equal share of the batch for every stratum the reservoir holds (two round trips).

    The strata are visited round-robin in a random order, one episode per visit, drawn
    uniformly from that stratum's episodes not yet taken; a stratum that runs out is passed
    over (:func:`~adaptd.replay.strata.share_out`). So every stratum gets ``n // strata`` or
    one more, as far as it holds that many, however dominant another one is. If writers
    evict a stratum's episodes between the two round trips it may give fewer. Episodes come
    back in visiting order. Subclasses say what a stratum is.
    """

    @abstractmethod
    def strata(self, keys: ReservoirKeys) -> Strata:
        """The index of the reservoir's slots by this sampler's strata."""

    async def sample(self, draws: SlotDraws, n: int, rng: random.Random) -> list[Episode]:
        strata = self.strata(draws.keys)
        order, taken = share_out(await draws.counts(strata), n, rng)
        drawn = await draws.from_strata(strata, taken, rng)
        pending = {stratum: iter(episodes) for stratum, episodes in drawn.items()}
        return [ep for ep in (next(pending[s], None) for s in order) if ep is not None]


@dataclass(frozen=True)
class StreamSampler(StratifiedSampler):
    """Stratified by stream: every stream an equal share, uniform within it.

    Stream A holding 300 episodes and B, C 20 each: ``n = 30`` gives 10/10/10, ``n = 90``
    gives 50/20/20.
    """

    def strata(self, keys: ReservoirKeys) -> Strata:
        return keys.by_stream


@dataclass(frozen=True)
class RegimeSampler(StratifiedSampler):
    """Stratified by (stream, regime): every regime held an equal share, uniform within it.

    A regime that lasted an hour, or was seen once long ago, is rehearsed as often as the one
    that dominates the reservoir: the replay half of the daemon's forgetting prevention.
    """

    def strata(self, keys: ReservoirKeys) -> Strata:
        return keys.by_regime


SAMPLERS: Mapping[str, Sampler] = MappingProxyType(
    {"uniform": UniformSampler(), "stratified": StreamSampler(), "regime": RegimeSampler()}
)
"""The samplers by the names of the ``replay.sample_strategy`` setting."""


def sampler_for(name: str) -> Sampler:
    """The sampler registered as ``name`` in :data:`SAMPLERS`; ValueError naming the choices
    otherwise."""
    try:
        return SAMPLERS[name]
    except KeyError:
        choices = tuple(SAMPLERS)
        raise ValueError(f"sample strategy must be one of {choices}, got {name!r}") from None
