"""Adaptation requests in flight: submit to the torch worker, gate, publish, apply.

A (stream, task) has at most one request in flight. When its outcome passes the query gate,
the policy gets the next version from Redis, goes to the policy topic (acknowledged), and is
recorded as the model's latest; ``Ownership.settle_request`` then makes it the live policy,
under the ownership lock so a snapshot never holds half of it. A request whose shift already
has a published policy (a crash after publication, before the snapshot) adopts that policy
instead of publishing a second one.

The chain of versions never forks (:mod:`.lineage`): before a policy is published its parent
is checked against the model's latest in Redis, and an adaptation made from an older parent is
made again from the latest (counted as ``rebased``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition

from ..core.effects import AdaptationRequest, Published, Retired
from ..core.policy import PolicyMessage
from ..core.signing import Signer
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..learner.messages import AdaptationOutcome, Learner
from .cancelling import cancel_all
from .configs import TaskModel
from .lineage import Lineage, PolicyRecords, published_of, reads_as
from .outcomes import (
    AdaptationRecord,
    adapt_job,
    observe,
    policy_message,
    record,
    retirement_message,
)
from .ownership import Ownership
from .sending import FATAL, PolicySender, Publication, Sender
from .worker import ADAPT, TorchWorker

log = get_logger("adaptd.publishing")

__all__ = ["FATAL", "Publisher"]


class Publisher:
    """Runs adaptation requests and publishes the policies that pass the gate.

    Parameters
    ----------
    ownership
        Owner of the stream states: results are applied through it.
    worker, learner
        Where adaptations run.
    outputs, policies
        The policy topic's sender and the version and latest-policy records.
    models
        Each task's model description, by task name.
    policy_topic, deadline_s
        From the settings.
    algorithm
        The message's ``algorithm`` after a given number of meta-updates.
    metrics
        The daemon's metrics.
    signer
        Signs each policy record (``signing.key_file``); None publishes them unsigned.
    """

    def __init__(
        self,
        ownership: Ownership,
        worker: TorchWorker,
        learner: Learner,
        outputs: Sender,
        policies: PolicyRecords,
        models: Mapping[str, TaskModel],
        *,
        policy_topic: str,
        deadline_s: float,
        algorithm: Callable[[int], dict[str, Any]],
        metrics: Metrics,
        signer: Signer | None = None,
    ) -> None:
        self.ownership = ownership
        self.worker = worker
        self.learner = learner
        self.models = models
        self.deadline_s = deadline_s
        self.algorithm = algorithm
        self.metrics = metrics
        self.sender = PolicySender(outputs, policies, policy_topic, metrics, signer)
        self.inflight: dict[str, tuple[TopicPartition, asyncio.Task[None]]] = {}
        self.history: deque[AdaptationRecord] = deque(maxlen=10_000)
        self.lineage = Lineage(ownership, policies, metrics)
        self._publishing: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        """Per model being published: its lock, and how many hold or wait for it."""
        self.closing = False
        """Set at shutdown: queued requests stay in the snapshot instead of starting."""

    def submit(self, request: AdaptationRequest) -> None:
        """Start a request on the worker; its result is applied when it finishes."""
        job = adapt_job(request)
        fut = self.worker.submit(self.learner.adapt, job, self.deadline_s, priority=ADAPT)
        # Read while the learner works: publishing then waits for no extra round trip.
        latest = asyncio.ensure_future(self.lineage.latest(request.model))
        self._start(
            request.id, self.ownership.partition_of(request), self._finish(request, fut, latest)
        )

    def _hand_over(self, nxt: AdaptationRequest | None) -> None:
        """Submit the request that waited behind a finished one (it stays in the snapshot
        when the daemon is closing)."""
        if nxt is not None and not self.closing:
            self.submit(nxt)

    def retire(self, retired: Retired) -> None:
        """Publish the task's baseline in place of a policy that lost to it (continuous
        validation; the stream already serves the baseline), then make it the live version."""
        key = f"retire:{retired.model}:{retired.verdict.version}"
        self._start(key, TopicPartition(retired.topic, retired.partition), self._retire(retired))

    def _start(self, key: str, tp: TopicPartition, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(key)
        self.inflight[key] = (tp, task)
        self.metrics.in_flight.set(len(self.inflight))

        def done(_: object) -> None:
            # A rebased request runs again under the same key: only this task leaves.
            if key in self.inflight and self.inflight[key][1] is task:
                del self.inflight[key]
                self.metrics.in_flight.set(len(self.inflight))

        task.add_done_callback(done)

    async def recover(self, tps: Iterable[TopicPartition]) -> int:
        """Restored streams catch up with their models' latest policies
        (:meth:`Lineage.recover`)."""
        return await self.lineage.recover(tps)

    async def _rebase(self, request: AdaptationRequest, latest: PolicyMessage | None) -> bool:
        """When the model's latest policy in Redis, or the stream's live one (a retirement's
        baseline published meanwhile), is newer than the request's parent: adopt it (when it
        is this request's own publication) or adapt again from it. False when the parent is
        the latest, and the request goes on."""
        published = None
        if latest is not None and not reads_as(latest, self.models[request.task].features["names"]):
            latest = None  # of other inputs: no parent, and the chain goes on from the stream's
        same_shift = (
            latest is not None
            and latest.shift is not None
            and (latest.shift.id == request.shift.id)
        )
        if latest is not None and (latest.version > request.parent_version or same_shift):
            # The same shift: events processed again after a restart from a snapshot taken
            # before it found it again, and its policy is out already.
            published = published_of(latest)
        if published is not None and latest is not None:
            newest, validate = latest.version, not latest.validation
            if same_shift:
                nxt = await self.ownership.settle_request(request, published)
                self._hand_over(nxt)
                return True
        else:
            newest, validate = self.ownership.live_version(request), False
            if newest <= request.parent_version:
                return False
        self.metrics.adaptations.labels(outcome="rebased").inc()
        log.warning(
            "adapted from an older policy than the model's latest; adapting again from it",
            stream=request.stream,
            task=request.task,
            shift=request.shift.id,
            parent_version=request.parent_version,
            latest_version=newest,
        )
        nxt = await self.ownership.rebase(request, published, validate=validate)
        self._hand_over(nxt)
        return True

    @contextlib.asynccontextmanager
    async def _one_publisher(self, model: str) -> AsyncIterator[None]:
        """One publication of a model at a time, from its parent check until the stream
        serves it: else a retirement's baseline and an adaptation, published together, would
        both name the retired version as their parent."""
        entry = self._publishing.setdefault(model, (asyncio.Lock(), [0]))
        entry[1][0] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if not entry[1][0]:
                del self._publishing[model]

    async def _retire(self, retired: Retired) -> None:
        async with self._one_publisher(retired.model):
            await self._retire_now(retired)

    async def _retire_now(self, retired: Retired) -> None:
        if not self.ownership.serves_baseline(retired):
            return  # a newer policy went live meanwhile: it is what subscribers get next
        latest = await self.lineage.latest(retired.model)
        names = self.models[retired.task].features["names"]
        if (
            latest is not None
            and latest.version > retired.verdict.version
            and reads_as(latest, names)
        ):
            # Subscribers hold a newer policy than the one retired: it goes live instead.
            published = published_of(latest)
            if published is not None:
                await self.ownership.catch_up(
                    TopicPartition(retired.topic, retired.partition),
                    retired.stream,
                    retired.task,
                    published,
                    validate=not latest.validation,
                )
                return
        self.metrics.retirements.labels(task=retired.task).inc()
        log.warning(
            "policy retired: it loses to its baseline",
            stream=retired.stream,
            task=retired.task,
            version=retired.verdict.version,
            reason=retired.reason,
        )
        model = self.models[retired.task]
        version = await self.sender.publish(
            Publication(
                retired.model, lambda v: retirement_message(retired, v, model, self.algorithm(0))
            ),
            what="publish the baseline of a retired policy",
            stream=retired.stream,
            task=retired.task,
        )
        if version is not None:
            await self.ownership.adopt_baseline(retired, version)

    async def resume(self, requests: Iterable[AdaptationRequest]) -> None:
        """Resubmit requests a restored snapshot carried, unless their shift was already
        published (then that policy is adopted) or a newer policy than their parent was (then
        they adapt again from it)."""
        for request in requests:
            latest = await self.lineage.latest(request.model)
            if latest is None or not await self._rebase(request, latest):
                self.submit(request)

    async def drain(self, tps: Iterable[TopicPartition] | None, timeout_s: float) -> int:
        """Wait for in-flight requests (of some partitions, or all) to finish, then cancel
        what is left. Returns how many were cancelled. Draining everything also stops new
        submissions: queued requests stay in the stream state (and so in the snapshot)."""
        wanted = None if tps is None else set(tps)
        if wanted is None:
            self.closing = True
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            tasks = [t for tp, t in self.inflight.values() if wanted is None or tp in wanted]
            left = deadline - asyncio.get_running_loop().time()
            if not tasks or left <= 0:
                break
            await asyncio.wait(tasks, timeout=left)
        await cancel_all(tasks, tries=5)
        return len(tasks)

    async def _finish(
        self,
        request: AdaptationRequest,
        fut: asyncio.Future[Any],
        latest: asyncio.Future[PolicyMessage | None],
    ) -> None:
        try:
            outcome = await self._outcome(request, fut)
            if not self.ownership.owns(request):
                return  # revoked meanwhile: the new owner resumes it from the snapshot
            async with self._one_publisher(request.model):
                await self._apply(request, outcome, latest)
        finally:
            if not latest.done():
                latest.cancel()
            elif not latest.cancelled():
                latest.exception()  # retrieved, so an unused failure is not reported

    async def _outcome(
        self, request: AdaptationRequest, fut: asyncio.Future[Any]
    ) -> AdaptationOutcome | None:
        """The learner's answer; None (counted, logged) when the adaptation failed."""
        try:
            return await fut
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except Exception as exc:
            self.metrics.adaptations.labels(outcome="failed").inc()
            log.error(
                "adaptation failed",
                stream=request.stream,
                task=request.task,
                shift=request.shift.id,
                error=repr(exc),
                exc_info=exc,
            )
            return None

    async def _apply(
        self,
        request: AdaptationRequest,
        outcome: AdaptationOutcome | None,
        latest: asyncio.Future[PolicyMessage | None],
    ) -> None:
        published = None
        if outcome is not None:
            observe(self.metrics, outcome)
            version = 0
            if outcome.publish and await self._rebase(request, await latest):
                return
            if outcome.publish:
                # Network I/O outside the lock: a snapshot taken meanwhile still holds the
                # request as pending, and resume() adopts the published policy instead of
                # publishing it again.
                adapted = outcome
                model = self.models[request.task]
                algorithm = self.algorithm(adapted.meta_updates)
                sent = await self.sender.publish(
                    Publication(
                        request.model,
                        lambda v: policy_message(request, adapted, v, model, algorithm),
                    ),
                    what="publish policy",
                    stream=request.stream,
                    task=request.task,
                )
                if sent is None:
                    self.metrics.adaptations.labels(outcome="failed").inc()
                    outcome = None
                else:
                    version = sent
                    published = Published(version, outcome.weights)
        if outcome is not None:
            index = self.ownership.events_seen(request)
            self.history.append(record(request, outcome, version, index))
            self._report(request, outcome, version)
        nxt = await self.ownership.settle_request(request, published)
        self._hand_over(nxt)

    def _report(self, request: AdaptationRequest, outcome: AdaptationOutcome, version: int) -> None:
        common = {
            "stream": request.stream,
            "task": request.task,
            "shift": request.shift.id,
            "offset": request.shift.offset,
            "query_loss_before": outcome.query_loss_before,
            "query_loss_after": outcome.query_loss_after,
        }
        if not version:
            self.metrics.adaptations.labels(outcome="rejected").inc()
            log.info("adaptation rejected by the query gate", **common)
            return
        done = time.time()
        self.metrics.adaptations.labels(outcome="published").inc()
        self.metrics.shift_to_publish.observe(done - request.shift.wall_time)
        self.metrics.adapt_to_publish.observe(done - request.ready_wall_time)
        log.info(
            "policy published",
            version=version,
            parent_version=request.parent_version,
            regime=None if request.regime is None else request.regime.regime_id,
            adaptation_ms=round(outcome.seconds * 1000, 2),
            **common,
        )
