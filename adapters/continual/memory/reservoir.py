"""Reservoir insertion (Vitter's Algorithm R) over the whole stream of offered items.

The ``n``-th item offered takes a uniformly chosen slot with probability ``capacity / n``, so
every item offered so far is held with the same probability ``capacity / seen``, whatever the
task it came from (as the Redis reservoir in ``adaptd.replay.reservoir`` does server-side).

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.memory import EpisodicMemory
>>> memory = EpisodicMemory(6, inserter=ReservoirInserter(), seed=0)
>>> memory.add(torch.arange(8.0).reshape(8, 1), torch.zeros(8, dtype=torch.long), task=0)
>>> len(memory), memory.seen
(6, 8)

References
----------
Vitter, J. S. (1985). Random sampling with a reservoir. ACM TOMS 11(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from .protocol import MemoryView, Placement

__all__ = ["ReservoirInserter", "algorithm_r"]


def algorithm_r(
    offered: int, room: int, count: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Algorithm R for ``count`` more items of a stream that has offered ``offered`` so far,
    into ``room`` places: ``(append, places, items)``, the items that fill free places (in
    order), and the places ``0..room-1`` that the later items ``items`` overwrite."""
    # Vectorised: item i of the batch is the (offered + i + 1)-th of its stream; the first
    # ``room`` of a stream fill free places, each later one draws a position j < its count and
    # takes place j if j < room. The draws do not depend on the store, so applying them at
    # once (the last writer of a place wins) is exact.
    none = torch.zeros(0, dtype=torch.int64)
    position = offered + torch.arange(count)
    fill = position < room
    append = torch.nonzero(fill).squeeze(1)
    later = torch.nonzero(~fill).squeeze(1)
    if len(later) == 0:
        return append, none, none
    u = torch.rand(len(later), generator=generator, dtype=torch.float64)
    j = torch.floor(u * (position[later] + 1).to(torch.float64)).long()
    hit = j < room
    items, targets = later[hit], j[hit]
    if len(items) == 0:
        return append, none, none
    # Keep the last item aimed at each place: unique over the reversed order.
    unique, inverse = torch.unique(targets.flip(0), return_inverse=True)
    first = torch.full((len(unique),), len(targets), dtype=torch.int64)
    first = first.scatter_reduce(0, inverse, torch.arange(len(targets)), reduce="amin")
    return append, unique, items[len(targets) - 1 - first]


@dataclass(frozen=True)
class ReservoirInserter:
    """Algorithm R over everything offered: a uniform sample of the whole stream."""

    name: ClassVar[str] = "reservoir"

    def place(
        self, memory: MemoryView, count: int, task: int, generator: torch.Generator
    ) -> Placement:
        """Fill free slots in order, then replace uniformly chosen ones (slot ``j`` is the
        ``j``-th held item)."""
        del task  # every task is one stream
        append, slots, items = algorithm_r(memory.seen, memory.capacity, count, generator)
        return Placement(None, append, slots, items)
