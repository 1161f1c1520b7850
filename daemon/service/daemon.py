"""The daemon: consume, process, store effects, commit; adapt and publish on the side.

Lifecycle (``run`` to ``stop``): the constructor does nothing; ``run`` starts the HTTP port,
opens every collaborator (:mod:`.build`: Redis, the replay stores, the learner and its worker,
the meta-trainers, the producer, the consumer with its rebalance listener), then loops:

    poll a batch -> process it per partition (pure, under the ownership lock) -> store its
    effects (dead letters and shifts acknowledged by Kafka, episodes in the reservoirs) ->
    hand adaptation requests to the publisher -> every commit_interval_ms: snapshot + commit.

Shutdown has a fixed order: stop fetching, let in-flight adaptations finish within the
grace period and cancel the rest, flush the producer, snapshot and commit what was
processed (not after a failure), then close the clients in reverse order of opening. The
waiting fits in ``shutdown_grace_s``, whatever is in flight: a batch whose effects cannot
be stored by then (an output that keeps failing, a broker that is down) is left
uncommitted, to be processed again after the restart. Closing the clients and the learner
comes after it (about a second).
A bounded mode (``max_events``, ``idle_timeout_s``) keeps tests and benchmarks exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from typing import Any

from aiokafka.errors import KafkaError

from adaptd.replay.holdout import HoldoutStore

from .. import __version__
from ..config.settings import Settings
from ..core.effects import Effects
from ..io.http import HttpServer
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.retry import Waits
from .build import Services, open_services, start_learning
from .cancelling import cancel_all
from .gauges import update_gauges
from .metatrain import MetaTrainer
from .ownership import Ownership
from .publishing import Publisher

log = get_logger("adaptd.service")

__all__ = ["Daemon"]


class Daemon:
    """One adaptd instance; several with the same group id share the input partitions."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.http_port: int | None = None
        self.events_seen = 0
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._services: Services | None = None
        self._failed = False
        self._stop_deadline: float | None = None
        self._unstored = False  # a batch was cut short at shutdown: commit nothing
        self._input_topic_missing = False
        self._subscribed = asyncio.Event()
        self.input_topic_exists = False
        """Whether the broker knows ``kafka.input_topic`` (checked at start, then every
        refresh until it does): without it the group joins with nothing to read."""
        self.waits = Waits()
        """The writes (and reads) to Kafka and Redis pending now (``/readyz``'s
        ``writes_succeeding``)."""

    def stop(self) -> None:
        """Ask the daemon to stop; ``run`` then shuts down in order and returns, within
        ``shutdown_grace_s``."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_grace_s
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def wait_started(self, run: asyncio.Future[Any], timeout_s: float | None = None) -> bool:
        """True once the daemon has started. If ``run`` (its task of :meth:`run`) ends first,
        its error is raised, so that a daemon that fails to start is not waited for, and
        False is returned when it stopped cleanly (asked to before it had started).
        TimeoutError after ``timeout_s``."""
        started = asyncio.ensure_future(self.started.wait())
        try:
            first = asyncio.FIRST_COMPLETED
            await asyncio.wait({started, run}, timeout=timeout_s, return_when=first)
        finally:
            started.cancel()
        if self.started.is_set():
            return True
        if run.done():
            run.result()
            return False
        raise TimeoutError(f"the daemon did not start within {timeout_s} s")

    @property
    def services(self) -> Services:
        """The running daemon's collaborators (RuntimeError before ``run`` opened them)."""
        if self._services is None:
            raise RuntimeError("the daemon is not running")
        return self._services

    @property
    def ownership(self) -> Ownership:
        return self.services.ownership

    @property
    def publisher(self) -> Publisher:
        return self.services.publisher

    @property
    def trainer(self) -> MetaTrainer:
        """The first policy task's meta-trainer."""
        return self.services.trainers[0]

    @property
    def holdout(self) -> HoldoutStore | None:
        """The first policy task's held-out store (None without held-out episodes)."""
        return self.services.holdouts.get(self.services.models[0].name)

    async def run(
        self, *, max_events: int | None = None, idle_timeout_s: float | None = None
    ) -> None:
        # Every task the daemon starts inherits its waits: its writes are counted there.
        with self.waits.current():
            await self._run(max_events, idle_timeout_s)

    async def _run(self, max_events: int | None, idle_timeout_s: float | None) -> None:
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
        s, m = self.settings, self.metrics
        m.set_build_info(__version__, _version_of("torch"))
        # The probes answer from the start: /livez at once, /readyz once the group is joined.
        if s.metrics.enabled:
            server = HttpServer(s.metrics.host, s.metrics.port, m.render, self.readiness)
            await server.start()
            stack.push_async_callback(server.aclose)
            self.http_port = server.port
        self._services = services = await open_services(s, m, stack)
        stack.push_async_callback(services.consumer.stop)  # closed even if it never starts
        await services.consumer.start()
        # The group is joined while the learner starts; its partitions wait for the learner.
        await self._check_input_topic()
        await start_learning(services)
        for coro in (
            *(t.run() for t in services.trainers),
            self._watch_loop_lag(),
            self._refresh_gauges(),
        ):
            task = asyncio.create_task(coro)
            stack.push_async_callback(_cancel, task)
        log.info(
            "adaptd started",
            version=__version__,
            input_topic=s.kafka.input_topic,
            group_id=s.kafka.group_id,
            tasks=[model.name for model in services.models],
            http_port=self.http_port,
            meta_updates=self.trainer.meta_updates,
        )
        self.started.set()

    async def readiness(self) -> dict[str, bool]:
        services = self._services
        try:
            redis_ok = services is not None and bool(
                await asyncio.wait_for(services.redis.ping(), 1.0)
            )
        except Exception:
            redis_ok = False
        return {
            "group_joined": services is not None and services.ownership.joined.is_set(),
            "redis": redis_ok,
            "running": not self.stopping,
            "partitions_advancing": services is None or not services.ownership.stalls.stalled,
            "writes_succeeding": self._writes_succeeding(),
            "input_topic": self.input_topic_exists,
        }

    def _writes_succeeding(self) -> bool:
        limit = self.settings.metrics.write_wait_unready_s
        return not limit or self.waits.oldest()[1] < limit

    async def _check_input_topic(self) -> None:
        """Subscribe to the input topic once the broker lists it; until then warn (once) and
        fail readiness. Listing topics creates none, whereas subscribing to a missing topic
        would have a broker that creates topics on request create it (a mistyped name
        included) and the daemon join its group with nothing to read, looking healthy."""
        topic = self.settings.kafka.input_topic
        services = self.services
        try:
            exists = topic in await services.consumer.topics()
        except KafkaError as exc:
            log.warning("could not list the broker's topics", error=repr(exc))
            return
        if exists:
            if self._input_topic_missing:
                log.info("the input topic exists now: subscribing", topic=topic)
            services.consumer.subscribe([topic], listener=services.listener)
            self.input_topic_exists = True
            self._subscribed.set()
        elif not self._input_topic_missing:
            log.warning(
                "the input topic does not exist: nothing is consumed until it is created "
                "(kafka.input_topic); /readyz fails meanwhile",
                topic=topic,
            )
        self._input_topic_missing = not exists

    # -- the loop ------------------------------------------------------------------------
    async def _consume(self, max_events: int | None, idle_timeout_s: float | None) -> None:
        k = self.settings.kafka
        consumer = self.services.consumer
        commit_every = k.commit_interval_ms / 1000
        last_commit = last_data = time.monotonic()
        stop_wait = asyncio.create_task(self._stopping.wait())
        subscribed = asyncio.create_task(self._subscribed.wait())
        try:
            # Polling before the subscription would block: wait for the input topic.
            await asyncio.wait(
                {subscribed, stop_wait}, timeout=idle_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if not subscribed.done():
                return
            while not self.stopping:
                poll = asyncio.create_task(
                    consumer.getmany(timeout_ms=k.poll_timeout_ms, max_records=k.max_poll_records)
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
                    if not await self._unless_stopped(self._handle(batch), stop_wait):
                        break
                if now - last_commit >= commit_every:
                    if not await self._unless_stopped(self.services.ownership.commit(), stop_wait):
                        break
                    last_commit = now
                if max_events is not None and self.events_seen >= max_events:
                    break
                if idle_timeout_s is not None and now - last_data >= idle_timeout_s:
                    break
        finally:
            stop_wait.cancel()
            subscribed.cancel()

    async def _unless_stopped(self, coro: Awaitable[None], stop_wait: asyncio.Task) -> bool:
        """Await ``coro``; if a stop is asked meanwhile, give it until the shutdown deadline
        and then cancel it. True when it finished."""
        task = asyncio.ensure_future(coro)
        await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=self._time_left(reserve_s=0.0))
        if task.done():
            task.result()
            return True
        await cancel_all([task], tries=5)
        self._unstored = True
        log.warning("a batch could not be stored by the shutdown deadline: not committed")
        return False

    def _time_left(self, reserve_s: float) -> float:
        """Seconds to the shutdown deadline, less ``reserve_s`` (0 when past it)."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_grace_s
        return max(0.0, self._stop_deadline - time.monotonic() - reserve_s)

    async def _handle(self, batch: dict) -> None:
        started = time.perf_counter()
        services = self.services
        out = Effects()
        defaults = {t.task: t.init for t in services.trainers if t.init is not None}
        count = await services.ownership.process(batch, defaults, out)
        # Effects are stored in batch order; storing one batch overlaps with fetching and
        # processing the next, and every commit first waits for what is being stored.
        await services.effects.submit(out, started)
        for request in out.requests:
            services.publisher.submit(request)
        for retired in out.retirements:
            services.publisher.retire(retired)
        self.events_seen += count
        m = self.metrics
        m.events.labels(outcome="processed").inc(out.processed)
        m.events.labels(outcome="dead_letter").inc(len(out.dead_letters))
        m.examples.inc(out.examples)
        for (detector, channel), n in out.firings.items():
            m.detector_firings.labels(detector=detector, channel=channel).inc(n)
        for outcome, n in out.confirmations.items():
            m.confirmations.labels(outcome=outcome).inc(n)
        m.batch_size.observe(count)

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
            update_gauges(self.services.ownership)
            self.metrics.count_tasks()
            self.metrics.write_wait.set(self.waits.oldest()[1])
            if not self.input_topic_exists:
                await self._check_input_topic()

    # -- shutdown -----------------------------------------------------------------------
    async def _shutdown(self) -> None:
        services = self.services
        # Adaptations may use the grace period but for a reserve in which what was processed
        # is stored and committed.
        reserve = min(2.0, self.settings.shutdown_grace_s / 4)
        cancelled = await services.publisher.drain(None, self._time_left(reserve))
        if cancelled:
            log.warning(
                "in-flight adaptations cancelled at shutdown; they resume on restart",
                cancelled=cancelled,
            )
        committed = False
        if not self._failed and not self._unstored:
            try:
                async with asyncio.timeout(self._time_left(0.0)):
                    with contextlib.suppress(Exception):
                        await services.producer.flush()
                    await services.ownership.commit()
                committed = True
            except TimeoutError:
                log.warning(
                    "effects not stored by the shutdown deadline: not committed; they are "
                    "processed again after the restart",
                    grace_s=self.settings.shutdown_grace_s,
                )
        if not committed:
            await services.effects.abort()
        log.info("adaptd stopped", events=self.events_seen, failed=self._failed)


def _version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def _cancel(task: asyncio.Task[object], patience_s: float = 1.0, tries: int = 10) -> None:
    await cancel_all([task], patience_s=patience_s, tries=tries)
