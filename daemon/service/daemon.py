"""The daemon: consume, process, store effects, commit; adapt and publish on the side.

Lifecycle (``run`` to ``stop``): the constructor does nothing; ``run`` opens Redis, the
reservoir and the torch worker, restores the meta-learned initialisation, starts the
producer, the consumer (with the rebalance listener) and the HTTP port, then loops:

    poll a batch -> process it per partition (pure) -> store its effects (dead letters
    and shifts acknowledged by Kafka, episodes in the reservoir) -> hand adaptation
    requests to the torch worker -> every commit_interval_ms: snapshot + commit.

Shutdown has a fixed order: stop fetching, let in-flight adaptations finish within the
grace period and cancel the rest, flush the producer, snapshot and commit what was
processed (not after a failure), then close the clients in reverse order of opening.
A bounded mode (``max_events``, ``idle_timeout_s``) keeps tests and benchmarks exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import math
import time
from collections.abc import Iterable
from contextlib import AsyncExitStack

from aiokafka import TopicPartition
from aiokafka.errors import ProducerClosed

from adaptd.adapters.serving import NumpyPolicy
from adaptd.replay.episode import Episode
from adaptd.replay.holdout import HoldoutStore
from adaptd.replay.reservoir import AddResult, ReservoirBuffer

from .. import __version__
from ..config.settings import Settings
from ..core.effects import Effects
from ..core.features import feature_names
from ..core.stream import StreamConfig
from ..io.clients import make_consumer, make_producer, make_redis
from ..io.http import HttpServer
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.outputs import Outputs, shift_message
from ..io.retry import retrying
from ..io.stores import CheckpointStore, PolicyStore, SnapshotStore
from ..learner.messages import Learner
from ..learner.process import LearnerProcess
from .metatrain import MetaTrainer
from .ownership import Ownership, RebalanceListener
from .publishing import Publisher
from .retention import RetentionMonitor
from .worker import TorchWorker

log = get_logger("adaptd.service")


class Daemon:
    """One adaptd instance; several with the same group id share the input partitions."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.names = feature_names(settings.features)
        self.http_port: int | None = None
        self.events_seen = 0
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._default_policy: NumpyPolicy | None = None
        self._storing: asyncio.Task[None] | None = None
        self._failed = False

    def stop(self) -> None:
        """Ask the daemon to stop; ``run`` then shuts down in order and returns."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(
        self, *, max_events: int | None = None, idle_timeout_s: float | None = None
    ) -> None:
        async with AsyncExitStack() as stack:
            await self._open(stack)
            try:
                await self._consume(max_events, idle_timeout_s)
            except BaseException:
                self._failed = True
                raise
            finally:
                await self._shutdown()

    # -- start-up ------------------------------------------------------------------------
    async def _open(self, stack: AsyncExitStack) -> None:
        s = self.settings
        m = self.metrics
        m.set_build_info(__version__, _version_of("torch"))
        self.redis = make_redis(s.redis)
        stack.push_async_callback(self.redis.aclose)
        # The probes answer from the start: /livez at once, /readyz once the group is joined.
        if s.metrics.enabled:
            server = HttpServer(s.metrics.host, s.metrics.port, m.render, self.readiness)
            await server.start()
            stack.push_async_callback(server.aclose)
            self.http_port = server.port
        self.reservoir = ReservoirBuffer(
            self.redis, prefix=s.redis.key_prefix, capacity=s.replay.capacity
        )
        await self.reservoir.open()
        self.holdout = await self._open_holdout()
        self.learner = await self._open_learner(stack)
        self.worker = TorchWorker(
            threads=s.adaptation.torch_threads if s.adaptation.isolation == "thread" else None
        )
        stack.push_async_callback(self.worker.aclose)
        self.trainer = MetaTrainer(
            s,
            self.learner,
            self.worker,
            self.reservoir,
            CheckpointStore(self.redis, s.redis.key_prefix),
            m,
            self._set_default_policy,
            None
            if self.holdout is None
            else RetentionMonitor(
                self.holdout, self.learner, self.worker, m, s.continual.retention_floor
            ),
        )
        await self.trainer.restore()

        self.producer = make_producer(s.kafka)
        await self.producer.start()
        stack.push_async_callback(self.producer.stop)
        self.outputs = Outputs(self.producer, s.kafka.max_message_bytes)

        self.consumer = make_consumer(s.kafka, max_poll_records=s.kafka.max_poll_records)
        self.ownership = Ownership(
            self.consumer,
            SnapshotStore(self.redis, s.redis.key_prefix, s.kafka.group_id),
            StreamConfig(s, self.names),
            m,
            self.learner.architecture["activation"],
        )
        self.publisher = Publisher(
            s,
            self.ownership,
            self.worker,
            self.learner,
            self.outputs,
            PolicyStore(self.redis, s.redis.key_prefix),
            m,
        )
        self.ownership.on_restored = lambda tp, part: self.publisher.resume(
            tp, part.streams.values()
        )
        self.ownership.on_revoking = self._drain_partitions
        self.ownership.settle = self.settle
        self.consumer.subscribe([s.kafka.input_topic], listener=RebalanceListener(self.ownership))
        await self.consumer.start()
        stack.push_async_callback(self.consumer.stop)

        for coro in (self.trainer.run(), self._watch_loop_lag(), self._refresh_gauges()):
            task = asyncio.create_task(coro)
            stack.push_async_callback(_cancel, task)
        log.info(
            "adaptd started",
            version=__version__,
            input_topic=s.kafka.input_topic,
            group_id=s.kafka.group_id,
            http_port=self.http_port,
            meta_updates=self.learner.meta_updates,
        )
        self.started.set()

    async def _open_holdout(self) -> HoldoutStore | None:
        c = self.settings.continual
        if c.holdout_per_regime == 0:
            return None
        holdout = HoldoutStore(
            self.redis,
            prefix=self.settings.redis.key_prefix,
            per_regime=c.holdout_per_regime,
            max_regimes=c.holdout_max_regimes,
            min_examples=min(c.holdout_min_examples, self.settings.replay.episode_size),
        )
        await holdout.open()
        return holdout

    async def _open_learner(self, stack: AsyncExitStack) -> Learner:
        a, c = self.settings.adaptation, self.settings.continual
        if a.isolation == "thread":
            from ..learner.policy_learner import PolicyLearner

            local = PolicyLearner(a, len(self.names), c)
            await asyncio.get_running_loop().run_in_executor(None, local.warm_up)
            return local
        learner = LearnerProcess(a, len(self.names), c)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, learner.start)
        stack.push_async_callback(loop.run_in_executor, None, learner.close)
        return learner

    def _set_default_policy(self, policy: NumpyPolicy) -> None:
        self._default_policy = policy

    async def readiness(self) -> dict[str, bool]:
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), 1.0))
        except Exception:
            redis_ok = False
        ownership: Ownership | None = getattr(self, "ownership", None)
        return {
            "group_joined": ownership is not None and ownership.joined.is_set(),
            "redis": redis_ok,
            "running": not self.stopping,
        }

    # -- the loop ------------------------------------------------------------------------
    async def _consume(self, max_events: int | None, idle_timeout_s: float | None) -> None:
        k = self.settings.kafka
        commit_every = k.commit_interval_ms / 1000
        last_commit = last_data = time.monotonic()
        stop_wait = asyncio.create_task(self._stopping.wait())
        try:
            while not self.stopping:
                poll = asyncio.create_task(
                    self.consumer.getmany(
                        timeout_ms=k.poll_timeout_ms, max_records=k.max_poll_records
                    )
                )
                await asyncio.wait({poll, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    await asyncio.gather(poll, return_exceptions=True)
                    break
                batch = poll.result()
                now = time.monotonic()
                if batch:
                    last_data = now
                    await self._handle(batch)
                if now - last_commit >= commit_every:
                    await self.ownership.commit()
                    last_commit = now
                if max_events is not None and self.events_seen >= max_events:
                    break
                if idle_timeout_s is not None and now - last_data >= idle_timeout_s:
                    break
        finally:
            stop_wait.cancel()

    async def _handle(self, batch: dict) -> None:
        started = time.perf_counter()
        out = Effects()
        submitted = []
        count = 0
        async with self.ownership.lock:
            for tp, records in batch.items():
                part = self.ownership.partitions.get(tp)
                if part is None:
                    continue  # revoked while the fetch was in flight
                count += len(records)
                before = len(out.requests)
                part.process(records, self._default_policy, out)
                submitted += [(tp, r) for r in out.requests[before:]]
        # Effects are stored in batch order; storing one batch overlaps with fetching and
        # processing the next, and every commit first waits for what is being stored.
        await self.settle()
        self._storing = asyncio.create_task(self._store(out, started))
        for tp, request in submitted:
            self.publisher.submit(tp, request)
        self.events_seen += count
        m = self.metrics
        m.events.labels(outcome="processed").inc(out.processed)
        m.events.labels(outcome="dead_letter").inc(len(out.dead_letters))
        m.examples.inc(out.examples)
        for (detector, channel), n in out.firings.items():
            m.detector_firings.labels(detector=detector, channel=channel).inc(n)
        m.batch_size.observe(count)

    async def settle(self) -> None:
        """Return once the effects of every processed batch are stored."""
        if self._storing is not None:
            await self._storing

    async def _store(self, out: Effects, started: float) -> None:
        """Store every effect of the batch; returns only when all are acknowledged."""
        k = self.settings.kafka
        m = self.metrics
        records = [
            self.outputs.dead_letter_record(k.deadletter_topic, dl) for dl in out.dead_letters
        ]
        now_ms = int(time.time() * 1000)
        for stream, match in out.regimes:
            m.regimes.labels(outcome="known" if match.known else "new").inc()
            log.info(
                "regime classified",
                stream=stream,
                regime=match.regime_id,
                known=match.known,
                ratio=round(match.ratio, 3) if math.isfinite(match.ratio) else None,
                nearest=match.nearest,
            )
        for ev in out.shifts:
            key, value = shift_message(ev, now_ms)
            records.append((k.shift_topic, key, value, None))

        async def send() -> None:
            if records:
                await retrying(
                    lambda: self.outputs.send_all(records),
                    what="send effects",
                    on_error=lambda _: m.send_errors.inc(),
                    fatal=(ProducerClosed,),
                )

        async def keep() -> tuple[int, list[AddResult]]:
            if not out.episodes:
                return 0, []
            train = await self._divert_held_out(out.episodes)
            results = []
            if train:
                results = await retrying(
                    lambda: self.reservoir.add_many(train),
                    what="store episodes",
                    on_error=lambda _: m.redis_errors.inc(),
                )
            return len(out.episodes) - len(train), results

        _, (held, results) = await asyncio.gather(send(), keep())
        if held:
            m.replay_inserts.labels(result="held_out").inc(held)
        for result in results:
            m.replay_inserts.labels(result=str(result)).inc()
        m.processing_latency.observe(time.perf_counter() - started)
        for dl in out.dead_letters:
            m.dead_letters.labels(reason=str(dl.reason)).inc()
            log.debug(
                "dead letter",
                reason=str(dl.reason),
                detail=dl.detail,
                partition=dl.partition,
                offset=dl.offset,
            )
        for ev in out.shifts:
            for trigger in ev.shift.triggers[:1]:
                detector, _, channel = trigger.partition(":")
                m.shifts.labels(detector=detector, channel=channel).inc()
            log.info(
                "shift detected",
                stream=ev.stream,
                segment=ev.segment,
                triggers=list(ev.shift.triggers),
                offset=ev.offset,
                partition=ev.partition,
                event_ts_ms=ev.ts_ms,
            )

    async def _divert_held_out(self, episodes: list[Episode]) -> list[Episode]:
        """Offer the episodes to the held-out store first; the ones it keeps never reach
        the reservoir, so meta-training never sees them. Returns the others."""
        if self.holdout is None:
            return episodes
        holdout = self.holdout
        held = await retrying(
            lambda: holdout.offer_many(episodes),
            what="hold out episodes",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
        return [ep for ep, h in zip(episodes, held, strict=True) if not h]

    # -- background ---------------------------------------------------------------------
    async def _watch_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.1)
            self.metrics.loop_lag.set(max(loop.time() - before - 0.1, 0.0))

    async def _refresh_gauges(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            self.ownership.update_lag()
            self.metrics.streams.set(
                sum(len(p.streams) for p in self.ownership.partitions.values())
            )

    async def _drain_partitions(self, tps: Iterable[TopicPartition]) -> None:
        await self.publisher.drain(tps, self.settings.shutdown_grace_s)

    # -- shutdown -----------------------------------------------------------------------
    async def _shutdown(self) -> None:
        grace = self.settings.shutdown_grace_s
        cancelled = await self.publisher.drain(None, grace)
        if cancelled:
            log.warning(
                "in-flight adaptations cancelled at shutdown; they resume on restart",
                cancelled=cancelled,
            )
        with contextlib.suppress(Exception):
            await self.producer.flush()
        if not self._failed:
            await self.ownership.commit()
        log.info("adaptd stopped", events=self.events_seen, failed=self._failed)


def _version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def _cancel(task: asyncio.Task[object]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
