"""Adaptation requests in flight: submit to the torch worker, gate, publish, adopt.

A stream has at most one request in flight. When its outcome passes the query gate, the
policy gets the next version from Redis, goes to the policy topic (acknowledged), is
recorded as the model's latest, and becomes the stream's live policy, all under the
ownership lock so a snapshot never holds half of it. A request whose shift already has a
published policy (a crash after publication, before the snapshot) adopts that policy
instead of publishing a second one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from aiokafka import TopicPartition
from aiokafka.errors import ProducerClosed

from adaptd.adapters.codec import params_from_bytes

from ..config.settings import Settings
from ..core.effects import AdaptationRequest
from ..core.features import feature_spec
from ..core.policy import RegimeRef, ShiftRef, build_message, encode_message
from ..core.stream import StreamState
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.outputs import Outputs
from ..io.retry import retrying
from ..io.stores import PolicyStore
from ..learner.messages import Learner
from .ownership import Ownership
from .worker import ADAPT, TorchWorker, WorkerClosed

if TYPE_CHECKING:
    from ..learner.messages import AdaptationOutcome

log = get_logger("adaptd.publishing")

FATAL = (ProducerClosed, WorkerClosed)
"""Errors that retrying cannot fix: the daemon is shutting down."""


class AdaptationRecord(NamedTuple):
    """What became of one adaptation request (kept in memory for reports and benchmarks)."""

    stream: str
    shift_id: str
    published: bool
    version: int
    index: int
    """The stream's event count when the outcome was applied."""
    seconds: float
    query_loss_before: float
    query_loss_after: float
    query_loss_scratch: float
    shift_to_publish_s: float


class Publisher:
    """Runs adaptation requests and publishes the policies that pass the gate."""

    def __init__(
        self,
        settings: Settings,
        ownership: Ownership,
        worker: TorchWorker,
        learner: Learner,
        outputs: Outputs,
        policies: PolicyStore,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.ownership = ownership
        self.worker = worker
        self.learner = learner
        self.outputs = outputs
        self.policies = policies
        self.metrics = metrics
        self.features = feature_spec(settings.features)
        self.inflight: dict[str, tuple[TopicPartition, asyncio.Task[None]]] = {}
        self.history: deque[AdaptationRecord] = deque(maxlen=10_000)
        self.closing = False
        """Set at shutdown: queued requests stay in the snapshot instead of starting."""

    def submit(self, tp: TopicPartition, request: AdaptationRequest) -> None:
        fut = self.worker.submit(
            self.learner.adapt, request, self.settings.adaptation.deadline_s, priority=ADAPT
        )
        task = asyncio.create_task(self._finish(tp, request, fut), name=f"adapt:{request.id}")
        self.inflight[request.id] = (tp, task)
        task.add_done_callback(lambda _: self.inflight.pop(request.id, None))

    async def resume(self, tp: TopicPartition, streams: Iterable[StreamState]) -> None:
        """Resubmit requests a restored snapshot carried, unless already published."""
        for stream in streams:
            request = stream.pending
            if request is None:
                continue
            latest = await self.policies.latest(stream.stream)
            if latest is not None and latest.shift is not None and latest.shift.id == request.id:
                if latest.version > stream.policy_version:
                    stream.adopt(
                        latest.version,
                        params_from_bytes(latest.weight_bytes()),
                        self.learner.architecture["activation"],
                        regime=latest.regime.id if latest.regime is not None else None,
                    )
                nxt = stream.complete(request.id)
                if nxt is not None:
                    self.submit(tp, nxt)
                continue
            self.submit(tp, request)

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
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def _finish(
        self, tp: TopicPartition, request: AdaptationRequest, fut: asyncio.Future[Any]
    ) -> None:
        try:
            outcome: AdaptationOutcome | None = await fut
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except Exception as exc:
            self.metrics.adaptations.labels(outcome="failed").inc()
            log.error("adaptation failed", stream=request.stream, shift=request.id, error=repr(exc))
            outcome = None
        if self._stream(tp, request) is None:
            return  # revoked meanwhile: the new owner resumes it from the snapshot
        version = 0
        if outcome is not None:
            self._observe(outcome)
            if outcome.publish:
                # Network I/O outside the lock: a snapshot taken meanwhile still holds the
                # request as pending, and resume() adopts the published policy instead of
                # publishing it again.
                version = await retrying(
                    lambda: self._publish(request, outcome),
                    what="publish policy",
                    on_error=lambda _: self.metrics.publish_errors.inc(),
                    fatal=FATAL,
                )
        async with self.ownership.lock:
            stream = self._stream(tp, request)
            if stream is None:
                return
            if outcome is not None:
                self._apply(stream, request, outcome, version)
            nxt = stream.complete(request.id)
            self.ownership.partitions[tp].dirty.add(stream.stream)
        if nxt is not None and not self.closing:
            self.submit(tp, nxt)

    def _stream(self, tp: TopicPartition, request: AdaptationRequest) -> StreamState | None:
        """The request's stream, if this daemon still owns it and the request is its own."""
        part = self.ownership.partitions.get(tp)
        stream = part.streams.get(request.stream) if part else None
        return stream if stream is not None and stream.pending is request else None

    def _apply(
        self,
        stream: StreamState,
        request: AdaptationRequest,
        outcome: AdaptationOutcome,
        version: int,
    ) -> None:
        self._record(stream, request, outcome, version)
        if version:
            regime = request.regime.regime_id if request.regime is not None else None
            stream.adopt(
                version, outcome.weights, self.learner.architecture["activation"], regime=regime
            )
            done = time.time()
            self.metrics.adaptations.labels(outcome="published").inc()
            self.metrics.shift_to_publish.observe(done - request.shift.wall_time)
            self.metrics.adapt_to_publish.observe(done - request.ready_wall_time)
            log.info(
                "policy published",
                stream=stream.stream,
                version=version,
                parent_version=request.parent_version,
                shift=request.id,
                offset=request.shift.offset,
                regime=regime,
                query_loss_before=outcome.query_loss_before,
                query_loss_after=outcome.query_loss_after,
                adaptation_ms=round(outcome.seconds * 1000, 2),
            )
        else:
            self.metrics.adaptations.labels(outcome="rejected").inc()
            log.info(
                "adaptation rejected by the query gate",
                stream=stream.stream,
                shift=request.id,
                offset=request.shift.offset,
                query_loss_before=outcome.query_loss_before,
                query_loss_after=outcome.query_loss_after,
            )

    def _record(
        self,
        stream: StreamState,
        request: AdaptationRequest,
        outcome: AdaptationOutcome,
        version: int,
    ) -> None:
        self.history.append(
            AdaptationRecord(
                stream=stream.stream,
                shift_id=request.id,
                published=version > 0,
                version=version,
                index=stream.index,
                seconds=outcome.seconds,
                query_loss_before=outcome.query_loss_before,
                query_loss_after=outcome.query_loss_after,
                query_loss_scratch=outcome.query_loss_scratch,
                shift_to_publish_s=time.time() - request.shift.wall_time,
            )
        )

    def _observe(self, outcome: AdaptationOutcome) -> None:
        m = self.metrics
        m.adaptation_latency.observe(outcome.seconds)
        m.adaptation_queue.observe(outcome.queued_s)
        if outcome.deadline_hit:
            m.adaptation_deadline_hits.inc()
        m.query_loss.labels(policy="current").observe(outcome.query_loss_before)
        m.query_loss.labels(policy="adapted").observe(outcome.query_loss_after)

    async def _publish(self, request: AdaptationRequest, outcome: AdaptationOutcome) -> int:
        """Publish the adapted policy (acknowledged) and record it as the model's latest."""
        shift = request.shift
        model_id = request.stream
        version = await self.policies.next_version(model_id)
        now = time.time()
        message = build_message(
            model_id=model_id,
            version=version,
            parent_version=request.parent_version,
            stream=request.stream,
            weights=outcome.weights,
            architecture=self.learner.architecture,
            features=self.features,
            shift=ShiftRef(
                id=shift.id,
                triggers=shift.shift.triggers,
                index=shift.shift.index,
                ts_ms=shift.ts_ms,
                topic=shift.topic,
                partition=shift.partition,
                offset=shift.offset,
            ),
            regime=_regime_ref(request),
            algorithm=self.learner.algorithm | {"meta_updates": outcome.meta_updates},
            metrics={
                "query_loss_before": outcome.query_loss_before,
                "query_loss_after": outcome.query_loss_after,
                "query_loss_from_scratch": outcome.query_loss_scratch,
                "support_loss_before": outcome.support_loss_before,
                "support_loss_after": outcome.support_loss_after,
                "support_size": float(len(request.support_y)),
                "query_size": float(len(request.query_y)),
                "steps": float(outcome.steps),
                "deadline_hit": float(outcome.deadline_hit),
            },
            latency_s={
                "adaptation": outcome.seconds,
                "shift_to_publish": now - shift.wall_time,
                "ready_to_publish": now - request.ready_wall_time,
            },
            source={
                "topic": shift.topic,
                "partition": shift.partition,
                "first_offset": request.first_offset,
                "last_offset": request.last_offset,
            },
        )
        await self.outputs.send_all(
            [(self.settings.kafka.policy_topic, model_id.encode(), encode_message(message), None)]
        )
        await self.policies.save_latest(message)
        return version


def _regime_ref(request: AdaptationRequest) -> RegimeRef | None:
    match = request.regime
    if match is None:
        return None
    return RegimeRef(
        id=match.regime_id,
        known=match.known,
        ratio=match.ratio if math.isfinite(match.ratio) else None,
        warm_start=request.start_weights is not None,
    )
