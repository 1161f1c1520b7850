"""How many streams a daemon keeps: in memory (``state.max_live_streams``), and in its
partitions' snapshots in Redis (``state.max_stored_streams``).

After each commit every stream is stored, so the least recently used can leave memory; an
evicted stream comes back from its snapshot on its next event, and the evicted streams seen
longest ago leave Redis too. :class:`~adaptd.daemon.service.ownership.Ownership` calls these
under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Protocol

from aiokafka import TopicPartition

from ..core.partition import PartitionState
from ..core.stream import StreamState
from ..io.metrics import Metrics
from ..io.retry import retrying

__all__ = ["Snapshots", "StreamBounds"]


class Snapshots(Protocol):
    """Where partition snapshots live (``adaptd.daemon.io.stores.SnapshotStore``)."""

    async def save(
        self,
        topic: str,
        partition: int,
        next_offset: int,
        streams: dict[str, StreamState],
        pending: list[str] | None = None,
    ) -> dict[str, int]: ...

    async def restore(
        self, topic: str, partition: int, limit: int
    ) -> tuple[int, dict[str, StreamState], list[str]] | None: ...

    async def fetch(
        self, topic: str, partition: int, names: list[str]
    ) -> dict[str, StreamState]: ...

    async def forget(self, topic: str, partition: int, names: list[str]) -> None: ...


class StreamBounds:
    """The limits and the evictions, restores and deletions that keep them."""

    def __init__(
        self, snapshots: Snapshots, metrics: Metrics, max_live: int, max_stored: int
    ) -> None:
        self.snapshots = snapshots
        self.metrics = metrics
        self.max_live = max_live
        self.max_stored = max_stored

    def room(self, parts: Iterable[PartitionState]) -> int:
        """Streams that may still come into memory."""
        return max(self.max_live - sum(len(p.streams) for p in parts), 0)

    async def restore(self, tp: TopicPartition, part: PartitionState, names: list[str]) -> None:
        """Bring evicted streams a batch has events for back from the snapshot."""
        states = await retrying(
            partial(self.snapshots.fetch, tp.topic, tp.partition, names),
            what="restore evicted streams",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
        self.metrics.stream_restores.inc(len(part.readmit(names, states)))

    def evict(self, parts: Iterable[PartitionState]) -> None:
        """Evict the least recently used streams beyond ``max_live``, from each partition in
        proportion to its streams (an approximation of one process-wide LRU order that needs
        no bookkeeping per event)."""
        parts = list(parts)
        total = sum(len(p.streams) for p in parts)
        over = total - self.max_live
        if over <= 0:
            return
        evicted = 0
        for part in sorted(parts, key=lambda p: len(p.streams), reverse=True):
            share = min(over - evicted, -(-over * len(part.streams) // total))
            evicted += len(part.evict(share))
        self.metrics.stream_evictions.inc(evicted)

    async def forget(
        self, parts: Mapping[TopicPartition, PartitionState], tps: Iterable[TopicPartition]
    ) -> None:
        """Delete the stored state of the evicted streams seen longest ago, beyond
        ``max_stored`` per partition of ``tps``."""
        for tp in tps:
            part = parts.get(tp)
            names = [] if part is None else part.forget(self.max_stored)
            if names:
                await retrying(
                    partial(self.snapshots.forget, tp.topic, tp.partition, names),
                    what="delete forgotten streams",
                    on_error=lambda _: self.metrics.redis_errors.inc(),
                )
                self.metrics.streams_forgotten.inc(len(names))
