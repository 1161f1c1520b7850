"""What a consumer-group rebalance does to this daemon (aiokafka awaits both callbacks).

On revocation: in-flight adaptations of the revoked partitions may finish (within the grace
period), then their state is snapshotted and committed, and only then given up. On
assignment, once the learner is ready: the partitions' snapshots are restored, their streams
adopt what was published for them after the snapshot, and the adaptations they had in
flight are resumed.
"""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRebalanceListener, TopicPartition

from .ownership import Ownership
from .publishing import Publisher

__all__ = ["RebalanceListener"]


class RebalanceListener(ConsumerRebalanceListener):
    """Hands partitions over between the group's daemons without losing work."""

    def __init__(
        self,
        ownership: Ownership,
        publisher: Publisher,
        grace_s: float,
        ready: asyncio.Event | None = None,
    ) -> None:
        self.ownership = ownership
        self.publisher = publisher
        self.grace_s = grace_s
        self.ready = ready
        """Set once the learner can adapt (None: at once). The group is joined while the
        learner starts; partitions are taken only once it has."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        owned = [tp for tp in revoked if tp in self.ownership.partitions]
        if owned:
            await self.publisher.drain(owned, self.grace_s)
            await self.ownership.revoke(owned)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.ready is not None:
            await self.ready.wait()
        resumed = await self.ownership.assign(assigned)
        await self.publisher.recover(assigned)
        await self.publisher.resume(resumed)
