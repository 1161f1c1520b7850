"""Strata of the replay store: which (stream, regime) an episode belongs to, and how a batch
is shared out evenly among the strata present.

A stratum key is ``"{stream}:{regime}"``; the regime id is an integer, so splitting at the last
colon recovers both parts even when a stream id contains colons. :func:`share_out` is the
round-robin plan the reservoir's stratified samplers use (by stream, or by (stream, regime)):
strata in a random order, one item per visit, a stratum that runs out passed over.

Examples
--------
>>> regime_key("BTC-USD", 3), split_regime_key("venue:BTC-USD:3")
('BTC-USD:3', ('venue:BTC-USD', 3))
>>> import random
>>> order, taken = share_out({"a": 300, "b": 20, "c": 2}, 9, random.Random(0))
>>> sorted(taken.items())
[('a', 4), ('b', 3), ('c', 2)]
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from adaptd.adapters.checks import int_at_least

__all__ = ["regime_key", "share_out", "split_regime_key"]


def regime_key(stream: str, regime: int) -> str:
    """The stratum of an episode of ``stream`` classified into ``regime``."""
    int_at_least("regime", regime, 0)
    return f"{stream}:{regime}"


def split_regime_key(key: str) -> tuple[str, int]:
    """``(stream, regime)`` of a :func:`regime_key`; ValueError when ``key`` is not one."""
    stream, sep, regime = key.rpartition(":")
    if not sep or not stream or not regime.isdigit():
        raise ValueError(f"key must look like '<stream>:<regime id>', got {key!r}")
    return stream, int(regime)


def share_out(
    counts: Mapping[str, int], n: int, rng: random.Random
) -> tuple[list[str], dict[str, int]]:
    """Up to ``n`` draws spread evenly over the strata that hold items.

    The strata with ``counts > 0`` are sorted (so a seeded ``rng`` repeats) and shuffled, then
    visited round-robin, one draw per visit, skipping a stratum once all its items are drawn.
    Every stratum gets ``n // S`` draws or one more, as far as it holds that many. Returns the
    visiting order (one stratum per draw) and the number of draws per stratum (strata with
    none left out).
    """
    int_at_least("n", n, 0)
    strata = sorted(s for s, c in counts.items() if c > 0)
    rng.shuffle(strata)
    left = {s: counts[s] for s in strata}
    order: list[str] = []
    while len(order) < n and any(left[s] > 0 for s in strata):
        for s in strata:
            if len(order) < n and left[s] > 0:
                order.append(s)
                left[s] -= 1
    taken = {s: counts[s] - left[s] for s in strata if counts[s] > left[s]}
    return order, taken
