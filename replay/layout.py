"""What the reservoir keeps in Redis and what it reports: its key layout (with its two indexes
of slots by stratum), the outcome of an add, and its statistics (see docs/replay.md for the
layout).

>>> keys = ReservoirKeys.for_prefix("adaptd")
>>> keys.slots, keys.regime_set("BTC-USD:2")
('adaptd:reservoir:{adaptd}:slots', 'adaptd:reservoir:{adaptd}:regime:BTC-USD:2')
>>> keys.by_stream.set_of("BTC-USD") == keys.stream_set("BTC-USD")
True
>>> ReservoirKeys.for_prefix("a{b}")
Traceback (most recent call last):
...
ValueError: prefix must be non-empty and free of braces, got 'a{b}'
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = ["AddResult", "ReservoirKeys", "ReservoirStats", "Strata", "check_prefix"]


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can be a store's hash tag: non-empty and free of braces (a brace would
    end the tag early, or start another)."""
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"prefix must be non-empty and free of braces, got {prefix!r}")
    return prefix


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


class Strata(NamedTuple):
    """One index of the reservoir's slots by stratum: by stream, or by (stream, regime)."""

    counts: str
    """The hash of stratum -> number of slots it owns (a field only while it owns some)."""
    set_prefix: str
    """The key prefix of the strata's sorted sets of slot indices."""

    def set_of(self, stratum: str) -> str:
        """The sorted set of slot indices owned by ``stratum``."""
        return self.set_prefix + stratum


class ReservoirKeys(NamedTuple):
    """The Redis keys of one reservoir; all share the ``{prefix}`` hash tag."""

    meta: str
    marks: str
    slots: str
    owners: str
    counts: str
    stream_prefix: str
    regime_owners: str
    regime_counts: str
    regime_prefix: str

    @classmethod
    def for_prefix(cls, prefix: str) -> ReservoirKeys:
        # The braces make the prefix the hash tag: in a Redis Cluster every key of one
        # reservoir maps to one hash slot, which a multi-key script requires.
        base = f"{check_prefix(prefix)}:reservoir:{{{prefix}}}"
        return cls(
            meta=f"{base}:meta",
            marks=f"{base}:marks",
            slots=f"{base}:slots",
            owners=f"{base}:owners",
            counts=f"{base}:counts",
            stream_prefix=f"{base}:stream:",
            regime_owners=f"{base}:regime_owners",
            regime_counts=f"{base}:regime_counts",
            regime_prefix=f"{base}:regime:",
        )

    def stream_set(self, stream: str) -> str:
        """The sorted set of slot indices owned by ``stream``."""
        return self.by_stream.set_of(stream)

    def regime_set(self, key: str) -> str:
        """The sorted set of slot indices owned by the (stream, regime) ``key``."""
        return self.by_regime.set_of(key)

    @property
    def by_stream(self) -> Strata:
        """The slots indexed by stream (``counts`` and the ``stream:`` sets)."""
        return Strata(self.counts, self.stream_prefix)

    @property
    def by_regime(self) -> Strata:
        """The slots indexed by (stream, regime) (``regime_counts`` and the ``regime:`` sets)."""
        return Strata(self.regime_counts, self.regime_prefix)
