"""Which input partitions this daemon owns, their state, and committing it.

``Ownership`` is the one owner of the partition states: batches are processed, adaptation
results applied and snapshots taken through it, all under its lock, so a snapshot never holds
half of either. A partition's offset is committed only after its state snapshot (which carries
every pending label, partial episode and in-flight adaptation request) is in Redis, and only
after every effect of the records before it was acknowledged (``effects.settle()``). On
assignment, the snapshot and the committed offset decide where to resume:

- snapshot offset == committed offset: restore, consume from there;
- snapshot ahead of the commit (crash between the two writes): restore, seek to the
  snapshot (its effects were stored before it was written);
- no snapshot, or one behind the commit: fresh streams from the committed offset (they
  warm up again), logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from adaptd.adapters.serving import NumpyPolicy

from ..core.detectors.confirm import Check, run_checks
from ..core.effects import AdaptationRequest, Effects, Published, Retired
from ..core.partition import PartitionState, Record
from ..core.stream import StreamConfig
from ..core.track import TaskTrack
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.retry import retrying
from .bounds import Snapshots, StreamBounds
from .watchdog import StallWatch

log = get_logger("adaptd.ownership")

__all__ = ["Committer", "Ownership", "Snapshots"]


class Committer(Protocol):
    """The consumer's side of ownership (aiokafka's ``AIOKafkaConsumer`` has it)."""

    async def committed(self, tp: TopicPartition) -> int | None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    def highwater(self, tp: TopicPartition) -> int | None: ...

    def assignment(self) -> set[TopicPartition]: ...

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]: ...


class Settles(Protocol):
    """What must be stored before a commit (``EffectStore``)."""

    async def settle(self) -> None: ...


class Ownership:
    """The partitions this daemon owns and the lock that orders work on them."""

    def __init__(
        self,
        consumer: Committer,
        snapshots: Snapshots,
        effects: Settles,
        config: StreamConfig,
        metrics: Metrics,
        max_message_bytes: int,
        stall_timeout_s: float = 0.0,
        max_live_streams: int = 10_000,
        max_stored_streams: int = 100_000,
    ) -> None:
        self.consumer = consumer
        self.snapshots = snapshots
        self.effects = effects
        self.config = config
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.starts: dict[TopicPartition, int] = {}
        """Where a partition with no commit and no snapshot starts (its log start): its
        position until it processes a record, so the stall watch sees it too."""
        self.lock = asyncio.Lock()
        self.joined = asyncio.Event()
        """Set once the first assignment was handled (the readiness probe waits for it)."""
        self.bounds = StreamBounds(snapshots, metrics, max_live_streams, max_stored_streams)
        """How many streams live in memory and in Redis."""
        self.stalls = StallWatch(stall_timeout_s)
        """Partitions that do not advance while records wait (the readiness probe fails)."""

    # -- assignment -----------------------------------------------------------------------
    async def assign(self, assigned: Iterable[TopicPartition]) -> list[AdaptationRequest]:
        """Take over partitions, restoring their snapshots; returns the adaptation requests
        their restored streams had in flight (to resume)."""
        # Under the lock: aiokafka fetches the new partitions while this runs, and a batch
        # of theirs must wait until they are restored (or be rewound, see process()).
        async with self.lock:
            return await self._assign(assigned)

    async def _assign(self, assigned: Iterable[TopicPartition]) -> list[AdaptationRequest]:
        assigned = sorted(assigned)
        resumed: list[tuple[TopicPartition, AdaptationRequest]] = []
        new = [tp for tp in assigned if tp not in self.partitions]
        for i, tp in enumerate(new):
            part = PartitionState(tp.topic, tp.partition, self.config, self.max_message_bytes)
            committed = await self.consumer.committed(tp)
            # An equal share of the room left for each partition still to come, so that the
            # first partitions do not take it all; what one leaves passes to the next.
            room = self.bounds.room(self.partitions.values()) // (len(new) - i)
            snap = await self.snapshots.restore(tp.topic, tp.partition, room)
            if snap is not None and (committed is None or snap[0] >= committed):
                stale = part.restore(snap[1], snap[0])
                part.evicted = dict.fromkeys(snap[2])
                self.consumer.seek(tp, snap[0])
                if stale:
                    log.warning(
                        "streams restored with other feature settings warm up again",
                        topic=tp.topic,
                        partition=tp.partition,
                        streams=stale[:20],
                        count=len(stale),
                        features=list(self.config.feature_names),
                    )
                log.info(
                    "partition restored",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=snap[0],
                    committed=committed,
                    streams=len(snap[1]),
                    left_in_redis=len(snap[2]),
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
            resumed += [(tp, r) for r in part.in_flight()]
        await self._note_starts([tp for tp in assigned if self.partitions[tp].next_offset is None])
        self.bounds.evict(self.partitions.values())
        self.metrics.assigned_partitions.set(len(self.partitions))
        # Every assignment is logged, an empty one too: a daemon that joined its group and
        # reads nothing says so.
        log.info(
            "partitions assigned",
            partitions=[f"{tp.topic}:{tp.partition}" for tp in assigned],
            owned=len(self.partitions),
            streams=sum(len(p.streams) for p in self.partitions.values()),
        )
        self.joined.set()
        return [r for _, r in resumed]

    async def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        """Snapshot and commit partitions being given up, then forget them."""
        gone = [tp for tp in revoked if tp in self.partitions]
        if not gone:
            return
        log.info("partitions revoked", partitions=[f"{tp.topic}:{tp.partition}" for tp in gone])
        async with self.lock:
            await self._commit(gone)
            for tp in gone:
                self.partitions.pop(tp, None)
                self.committed.pop(tp, None)
                self.starts.pop(tp, None)
                with contextlib.suppress(KeyError):
                    self.metrics.consumer_lag.remove(str(tp.partition))
        self.metrics.assigned_partitions.set(len(self.partitions))

    def partition_of(self, request: AdaptationRequest) -> TopicPartition:
        """The input partition a request's shift came from."""
        return TopicPartition(request.shift.topic, request.shift.partition)

    # -- processing -----------------------------------------------------------------------
    async def process(
        self,
        batch: Mapping[TopicPartition, Sequence[Record]],
        defaults: Mapping[str, NumpyPolicy],
        out: Effects,
    ) -> int:
        """Apply a fetched batch to the owned partitions (records of a partition revoked
        while the fetch was in flight are skipped); returns the records processed."""
        count = 0
        async with self.lock:
            for tp, records in batch.items():
                part = self.partitions.get(tp)
                if part is None:
                    self._not_owned(tp, records)
                    continue
                count += len(records)
                missing = part.missing(records)
                if missing:
                    await self.bounds.restore(tp, part, missing)
                touched = part.apply(records, out)
                checks = part.checks(touched)
                try:
                    if checks:
                        await _off_the_loop(checks)
                finally:
                    # Even when cancelled: the batch finishes whole, as it would have
                    # without the wait, or its events would be in the state without their
                    # effects.
                    part.finish(touched, defaults, out)
        return count

    async def _note_starts(self, fresh: list[TopicPartition]) -> None:
        if not fresh:
            return
        try:
            self.starts.update(await self.consumer.beginning_offsets(fresh))
        except KafkaError as exc:  # the stall watch only misses these partitions meanwhile
            log.warning("log start offsets not known", error=repr(exc))

    def _not_owned(self, tp: TopicPartition, records: Sequence[Record]) -> None:
        """Records of a partition this daemon does not own (yet). Revoked while the fetch was
        in flight: its new owner reads them. Assigned, but fetched before the assignment
        reached :meth:`assign` (aiokafka fetches as soon as it knows the committed offsets,
        before the rebalance listener is done): the consumer is rewound to the first of
        them, or they would be skipped for good (issue 12, finding 5: a daemon that looked
        idle with records waiting)."""
        if records and tp in self.consumer.assignment():
            self.consumer.seek(tp, records[0].offset)
            self.metrics.rewinds.inc()
            log.info(
                "records of a partition not restored yet: read again after its assignment",
                topic=tp.topic,
                partition=tp.partition,
                offset=records[0].offset,
                records=len(records),
            )

    def owns(self, request: AdaptationRequest) -> bool:
        """True while this daemon owns the request's stream and the request is its task's
        pending one (not superseded, not revoked)."""
        part = self.partitions.get(self.partition_of(request))
        return part is not None and part.pending(request)

    def events_seen(self, request: AdaptationRequest) -> int:
        """How many events the request's stream has processed (-1 when it is not owned)."""
        part = self.partitions.get(self.partition_of(request))
        state = None if part is None else part.streams.get(request.stream)
        return -1 if state is None else state.index

    async def settle_request(
        self,
        request: AdaptationRequest,
        published: Published | None,
    ) -> AdaptationRequest | None:
        """Apply a finished request to its stream: ``published`` (version, weights) becomes
        the task's live policy (and its regime's); the request completes. Returns the queued
        request to submit next, if any (None as well when the stream is no longer ours)."""
        async with self.lock:
            part = self.partitions.get(self.partition_of(request))
            return None if part is None else part.settle(request, published)

    def live_version(self, request: AdaptationRequest) -> int:
        """The version the request's (stream, task) serves now (0 when not owned)."""
        part = self.partitions.get(self.partition_of(request))
        return 0 if part is None else part.live_version(request)

    async def rebase(
        self, request: AdaptationRequest, published: Published | None, *, validate: bool
    ) -> AdaptationRequest | None:
        """A newer policy of the request's model than its parent goes live, and the request
        comes back with it as its parent (:meth:`PartitionState.rebase`)."""
        async with self.lock:
            part = self.partitions.get(self.partition_of(request))
            return None if part is None else part.rebase(request, published, validate=validate)

    def models(
        self, tps: Iterable[TopicPartition]
    ) -> list[tuple[TopicPartition, str, str, str, int]]:
        """(partition, stream, task, model id, live version) of every track of ``tps``."""
        return [
            (tp, *model)
            for tp in tps
            if (part := self.partitions.get(tp)) is not None
            for model in part.models()
        ]

    async def catch_up(
        self, tp: TopicPartition, stream: str, task: str, published: Published, *, validate: bool
    ) -> bool:
        """``published`` goes live on the stream's task if newer than what it serves
        (:meth:`PartitionState.catch_up`)."""
        async with self.lock:
            part = self.partitions.get(tp)
            return part is not None and part.catch_up(stream, task, published, validate=validate)

    def _track_of(self, retired: Retired) -> tuple[PartitionState, TaskTrack] | None:
        part = self.partitions.get(TopicPartition(retired.topic, retired.partition))
        state = None if part is None else part.streams.get(retired.stream)
        return None if part is None or state is None else (part, state.track(retired.task))

    def serves_baseline(self, retired: Retired) -> bool:
        """True while the stream still serves the baseline that replaced a retired policy
        (no newer policy went live meanwhile, and the stream is still ours)."""
        found = self._track_of(retired)
        return found is not None and found[1].live.weights is retired.weights

    async def adopt_baseline(self, retired: Retired, version: int) -> None:
        """The baseline published as ``version`` in place of a retired policy goes live
        (:meth:`TaskTrack.adopt_baseline`)."""
        async with self.lock:
            found = self._track_of(retired)
            if found is not None and found[1].adopt_baseline(retired.weights, version):
                found[0].dirty.add(retired.stream)

    # -- commits --------------------------------------------------------------------------
    async def commit(self) -> None:
        """Snapshot and commit every owned partition that moved since its last commit."""
        async with self.lock:
            await self._commit(list(self.partitions))

    async def _commit(self, tps: Iterable[TopicPartition]) -> None:
        # Under the lock, so no batch is processed between storing and snapshotting.
        await self.effects.settle()
        offsets: dict[TopicPartition, int] = {}
        for tp in tps:
            part = self.partitions.get(tp)
            if part is None or part.next_offset is None:
                continue
            if part.next_offset == self.committed.get(tp) and not part.dirty:
                continue
            changed = {name: part.streams[name] for name in part.dirty if name in part.streams}
            pending = [r.stream for r in part.in_flight()]
            offset = part.next_offset
            # Retried while Redis is down (seen in make chaos: a commit during a Redis restart
            # ended the daemon); the stall watch and /readyz report the wait meanwhile.
            sizes = await retrying(
                partial(self.snapshots.save, tp.topic, tp.partition, offset, changed, pending),
                what="store the partition snapshot",
                on_error=lambda _: self.metrics.redis_errors.inc(),
            )
            for size in sizes.values():
                self.metrics.stream_snapshot_bytes.observe(size)
            part.dirty.clear()
            offsets[tp] = part.next_offset
        # Every stream of these partitions is stored now: the least recently used can go.
        self.bounds.evict(self.partitions.values())
        await self.bounds.forget(self.partitions, offsets)
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


async def _off_the_loop(checks: list[Check]) -> None:
    """Run shift confirmations (PELT over a window: milliseconds each) on a thread; a
    cancellation waits for them to end before it goes on."""
    job = asyncio.get_running_loop().run_in_executor(None, run_checks, checks)
    try:
        await asyncio.shield(job)
    except asyncio.CancelledError:
        await job
        raise
