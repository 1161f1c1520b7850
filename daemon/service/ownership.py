"""Which input partitions this daemon owns, their state, and committing it.

A partition's offset is committed only after its state snapshot (which carries every
pending label, partial episode and in-flight adaptation request) is in Redis, and only
after every effect of the records before it was acknowledged. On assignment, the
snapshot and the committed offset decide where to resume:

- snapshot offset == committed offset: restore, consume from there;
- snapshot ahead of the commit (crash between the two writes): restore, seek to the
  snapshot (its effects were stored before it was written);
- no snapshot, or one behind the commit: fresh streams from the committed offset (they
  warm up again), logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from ..core.partition import PartitionState
from ..core.stream import StreamConfig
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.stores import SnapshotStore

log = get_logger("adaptd.ownership")


class Ownership:
    """The partitions this daemon owns and the lock that orders work on them."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        snapshots: SnapshotStore,
        config: StreamConfig,
        metrics: Metrics,
        activation: str,
    ) -> None:
        self.consumer = consumer
        self.snapshots = snapshots
        self.config = config
        self.metrics = metrics
        self.activation = activation
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.committed: dict[TopicPartition, int] = {}
        # Held while a batch is processed and stored, while a result is applied, and while
        # state is snapshotted and committed: a snapshot never sees half of either.
        self.lock = asyncio.Lock()
        self.joined = asyncio.Event()
        self.on_restored: Callable[[TopicPartition, PartitionState], Awaitable[None]] | None = None
        self.on_revoking: Callable[[Iterable[TopicPartition]], Awaitable[None]] | None = None
        self.settle: Callable[[], Awaitable[None]] | None = None
        """Waits until the effects of every processed batch are stored."""

    async def assign(self, assigned: Iterable[TopicPartition]) -> None:
        for tp in sorted(assigned):
            if tp in self.partitions:
                continue
            part = PartitionState(tp.topic, tp.partition, self.config, self.activation)
            committed = await self.consumer.committed(tp)
            snap = await self.snapshots.load(tp.topic, tp.partition)
            if snap is not None and (committed is None or snap[0] >= committed):
                part.restore(snap[1], snap[0])
                self.consumer.seek(tp, snap[0])
                log.info(
                    "partition restored",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=snap[0],
                    committed=committed,
                    streams=len(snap[1]),
                )
            elif committed is not None:
                part.next_offset = committed
                log.warning(
                    "partition has no usable snapshot; streams warm up again",
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=committed,
                    snapshot_offset=None if snap is None else snap[0],
                )
            self.partitions[tp] = part
            self.committed[tp] = committed if committed is not None else -1
            if self.on_restored is not None:
                await self.on_restored(tp, part)
        self.metrics.assigned_partitions.set(len(self.partitions))
        self.joined.set()

    async def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = [tp for tp in revoked if tp in self.partitions]
        if not revoked:
            return
        if self.on_revoking is not None:
            await self.on_revoking(revoked)
        async with self.lock:
            await self._commit(revoked)
            for tp in revoked:
                self.partitions.pop(tp, None)
                self.committed.pop(tp, None)
                with contextlib.suppress(KeyError):
                    self.metrics.consumer_lag.remove(str(tp.partition))
        self.metrics.assigned_partitions.set(len(self.partitions))

    async def commit(self) -> None:
        """Snapshot and commit every owned partition that moved since its last commit."""
        async with self.lock:
            await self._commit(list(self.partitions))

    async def _commit(self, tps: Iterable[TopicPartition]) -> None:
        # Under the lock, so no batch is processed between storing and snapshotting.
        if self.settle is not None:
            await self.settle()
        offsets: dict[TopicPartition, int] = {}
        for tp in tps:
            part = self.partitions.get(tp)
            if part is None or part.next_offset is None:
                continue
            if part.next_offset == self.committed.get(tp) and not part.dirty:
                continue
            changed = {name: part.streams[name] for name in part.dirty if name in part.streams}
            await self.snapshots.save(tp.topic, tp.partition, part.next_offset, changed)
            part.dirty.clear()
            offsets[tp] = part.next_offset
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # The snapshot is ahead of the commit now; assignment handles that case.
            self.metrics.commits.labels(result="failed").inc()
            log.warning(
                "offset commit failed", error=repr(exc), partitions=[tp.partition for tp in offsets]
            )
            return
        self.committed.update(offsets)
        self.metrics.commits.labels(result="ok").inc()

    def update_lag(self) -> None:
        for tp, part in self.partitions.items():
            high = self.consumer.highwater(tp)
            if high is not None and part.next_offset is not None:
                self.metrics.consumer_lag.labels(partition=str(tp.partition)).set(
                    max(high - part.next_offset, 0)
                )


class RebalanceListener(ConsumerRebalanceListener):
    """Commits on revoke and restores on assignment (aiokafka awaits both)."""

    def __init__(self, ownership: Ownership) -> None:
        self.ownership = ownership

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.ownership.revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.ownership.assign(assigned)
