"""The publisher without a broker: requests run on a real torch worker against a scripted
learner, policies go to a recording sender and in-memory version records, and results are
applied through a real Ownership of real stream state."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import numpy as np
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from service_support import (
    MAX_BYTES,
    TOPIC,
    FakeConsumer,
    MemoryPolicies,
    MemorySnapshots,
    RecordingSender,
    Settled,
    config_of,
    counter,
    market_records,
    same_weights,
    small_settings,
    weights,
)
from structlog.testing import capture_logs

from adaptd.adapters.codec import params_from_bytes
from adaptd.daemon.core.effects import AdaptationRequest, Effects
from adaptd.daemon.core.policy import Policy, PolicyMessage, build_message, decode_message
from adaptd.daemon.core.signing import Keyring, Signer, generate_key_pair
from adaptd.daemon.core.track import TaskTrack
from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.io.outputs import Undeliverable
from adaptd.daemon.learner.messages import AdaptationOutcome, AdaptJob
from adaptd.daemon.service.configs import algorithm_of, task_models, tasks_of
from adaptd.daemon.service.outcomes import policy_message
from adaptd.daemon.service.ownership import Ownership
from adaptd.daemon.service.publishing import Publisher
from adaptd.daemon.service.worker import TorchWorker

# The live policies adopted here are random: continuous validation would retire them (it has
# its own test below, on its own config).
SETTINGS = small_settings(adaptation={"validate_policies": False})
CONFIG = config_of(SETTINGS)
MODELS = {m.name: m for m in task_models(SETTINGS, tasks_of(SETTINGS))}
IN_DIM = len(CONFIG.feature_names)
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
DEADLINE_S = 0.5


def outcome(request: AdaptationRequest, *, publish: bool, seed: int = 0) -> AdaptationOutcome:
    return AdaptationOutcome(
        request_id=request.id,
        publish=publish,
        weights=weights(IN_DIM, seed=seed),
        query_loss_before=1.5,
        query_loss_after=0.5 if publish else 1.75,
        query_loss_scratch=1.25,
        support_loss_before=1.0,
        support_loss_after=0.25,
        steps=5,
        deadline_hit=False,
        seconds=0.02,
        meta_updates=17,
        queued_s=0.01,
    )


class ScriptedLearner:
    """Answers each adaptation job with the outcome (or error) scripted for its request;
    a job whose request has a gate waits on the worker thread until the gate opens."""

    def __init__(self) -> None:
        self.outcomes: dict[str, AdaptationOutcome | Exception] = {}
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self.jobs: list[AdaptJob] = []
        self.deadlines: list[float] = []

    def hold(self, request: AdaptationRequest) -> None:
        self.gates[request.id] = threading.Event()
        self.entered[request.id] = threading.Event()

    async def started(self, request: AdaptationRequest) -> None:
        assert await asyncio.to_thread(self.entered[request.id].wait, 10.0), "never started"

    def release(self, request: AdaptationRequest) -> None:
        self.gates[request.id].set()

    def adapt(self, job: AdaptJob, deadline_s: float) -> AdaptationOutcome:
        self.jobs.append(job)
        self.deadlines.append(deadline_s)
        if job.request_id in self.gates:
            self.entered[job.request_id].set()
            assert self.gates[job.request_id].wait(10.0)
        result = self.outcomes[job.request_id]
        if isinstance(result, Exception):
            raise result
        return result


@dataclass
class Rig:
    publisher: Publisher
    ownership: Ownership
    learner: ScriptedLearner
    sender: RecordingSender
    policies: MemoryPolicies
    snapshots: MemorySnapshots
    metrics: Metrics

    async def requested(
        self, stream: str, tp: TopicPartition = TP0, *, live: int = 0
    ) -> AdaptationRequest:
        """Process a shifting market on ``stream``; its request is pending now. With ``live``,
        the stream has that policy version live (published earlier) before the shift."""
        recs = market_records(stream, tp.partition)
        await self.ownership.process({tp: recs[:150]}, {}, Effects())
        if live:
            self.track(stream, tp).adopt(live, weights(IN_DIM, seed=99), None)
            self.policies.versions[stream] = live
        out = Effects()
        await self.ownership.process({tp: recs[150:]}, {}, out)
        (request,) = out.requests
        return request

    def track(self, stream: str, tp: TopicPartition = TP0) -> TaskTrack:
        return self.ownership.partitions[tp].streams[stream].track("return")

    async def idle(self) -> None:
        """Wait until every request in flight finished, those they handed over included."""
        while self.publisher.inflight:
            await asyncio.gather(*(task for _, task in self.publisher.inflight.values()))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    metrics = Metrics()
    snapshots = MemorySnapshots()
    ownership = Ownership(FakeConsumer(), snapshots, Settled(), CONFIG, metrics, MAX_BYTES)
    await ownership.assign({TP0, TP1})
    learner, sender, policies = ScriptedLearner(), RecordingSender(), MemoryPolicies()
    worker = TorchWorker()
    publisher = Publisher(
        ownership,
        worker,
        learner,
        sender,
        policies,
        MODELS,
        policy_topic="policies",
        deadline_s=DEADLINE_S,
        algorithm=lambda updates: algorithm_of(SETTINGS, updates),
        metrics=metrics,
    )
    try:
        yield Rig(publisher, ownership, learner, sender, policies, snapshots, metrics)
    finally:
        for gate in learner.gates.values():
            gate.set()
        await worker.aclose()


async def test_a_policy_that_passes_the_gate_is_published_recorded_and_applied(rig: Rig) -> None:
    request = await rig.requested("S", live=4)
    assert (request.parent_version, request.model) == (4, "S")
    done = outcome(request, publish=True, seed=1)
    rig.learner.outcomes[request.id] = done
    rig.publisher.submit(request)
    await rig.idle()

    (job,) = rig.learner.jobs
    assert (job.request_id, job.task) == (request.id, "return")
    np.testing.assert_array_equal(job.support_x, request.support_x)
    np.testing.assert_array_equal(job.query_y, request.query_y)
    assert same_weights(job.parent_weights, weights(IN_DIM, seed=99))
    assert rig.learner.deadlines == [DEADLINE_S]

    ((topic, key, value, headers),) = rig.sender.sent
    assert (topic, key, headers) == ("policies", b"S", None)
    message = decode_message(value)
    model = MODELS["return"]
    assert (message.model_id, message.stream) == ("S", "S")
    assert (message.version, message.parent_version) == (5, 4)
    assert message.task == model.description
    assert message.architecture == model.architecture
    assert message.features == model.features
    assert message.algorithm == algorithm_of(SETTINGS, 17)
    assert message.metrics == {
        "query_loss_before": 1.5,
        "query_loss_after": 0.5,
        "query_loss_from_scratch": 1.25,
        "support_loss_before": 1.0,
        "support_loss_after": 0.25,
        "support_size": float(len(request.support_y)),
        "query_size": 4.0,
        "steps": 5.0,
        "deadline_hit": 0.0,
    }
    assert message.shift is not None and message.shift.id == request.shift.id
    assert message.shift.offset == request.shift.offset
    assert message.regime is not None and request.regime is not None
    assert message.regime.id == request.regime.regime_id
    assert message.source == {
        "topic": TOPIC,
        "partition": 0,
        "first_offset": request.first_offset,
        "last_offset": request.last_offset,
    }
    assert same_weights(params_from_bytes(message.weight_bytes()), done.weights)

    assert rig.policies.saved == [message]  # the model's latest now
    live = rig.track("S").live
    assert (live.version, live.pending) == (5, None)
    assert same_weights(live.weights, done.weights)
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="published") == 1
    assert counter(rig.metrics, "adaptd_shift_to_publish_seconds_count") == 1
    assert counter(rig.metrics, "adaptd_adaptation_latency_seconds_count") == 1
    (kept,) = rig.publisher.history
    assert (kept.stream, kept.shift_id, kept.published, kept.version) == (
        "S",
        request.shift.id,
        True,
        5,
    )
    assert kept.index == rig.ownership.partitions[TP0].streams["S"].index > 150
    assert kept.queued_s == 0.01  # the learner's own figure, kept for the benchmark's split


async def test_with_a_signer_each_policy_record_carries_its_signature(rig: Rig) -> None:
    private, public = generate_key_pair()
    rig.publisher.sender.signer = Signer.from_pem(private)
    request = await rig.requested("S", live=4)
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
    rig.publisher.submit(request)
    await rig.idle()
    ((_, _, value, headers),) = rig.sender.sent
    assert Keyring.from_pem([public]).verify(value, headers) == rig.publisher.sender.signer.key_id
    assert decode_message(value).version == 5


async def test_a_policy_the_gate_rejects_is_not_sent(rig: Rig) -> None:
    request = await rig.requested("S", live=2)
    rig.learner.outcomes[request.id] = outcome(request, publish=False)
    with capture_logs() as logs:
        rig.publisher.submit(request)
        await rig.idle()
    assert rig.sender.sent == [] and rig.policies.saved == []
    assert rig.policies.versions == {"S": 2}  # no version drawn
    live = rig.track("S").live
    assert (live.version, live.pending) == (2, None)
    assert same_weights(live.weights, weights(IN_DIM, seed=99))
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="rejected") == 1
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="published") == 0
    assert counter(rig.metrics, "adaptd_adaptation_latency_seconds_count") == 1
    assert [e["event"] for e in logs] == ["adaptation rejected by the query gate"]
    (kept,) = rig.publisher.history
    assert (kept.published, kept.version) == (False, 0)


async def test_a_failed_adaptation_is_counted_and_the_queued_request_goes_next(rig: Rig) -> None:
    first = await rig.requested("S")
    queued = dataclasses.replace(first, id="S@market:0:999")
    assert rig.track("S").live.submit(queued) is False
    rig.learner.outcomes[first.id] = RuntimeError("the learner process died")
    rig.learner.outcomes[queued.id] = outcome(queued, publish=True, seed=2)
    with capture_logs() as logs:
        rig.publisher.submit(first)
        await rig.idle()
    assert [job.request_id for job in rig.learner.jobs] == [first.id, queued.id]
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="failed") == 1
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="published") == 1
    (failed,) = [e for e in logs if e["event"] == "adaptation failed"]
    assert (failed["shift"], failed["log_level"]) == (first.shift.id, "error")
    live = rig.track("S").live
    assert (live.version, live.pending) == (1, None)
    assert decode_message(rig.sender.sent[0][2]).parent_version == 0


async def test_a_request_revoked_meanwhile_is_not_applied(rig: Rig) -> None:
    request = await rig.requested("S")
    rig.learner.outcomes[request.id] = outcome(request, publish=True)
    rig.learner.hold(request)
    rig.publisher.submit(request)
    await rig.learner.started(request)
    await rig.ownership.revoke({TP0})
    rig.learner.release(request)
    await rig.idle()
    assert rig.sender.sent == [] and rig.policies.saved == [] and rig.policies.versions == {}
    assert len(rig.publisher.history) == 0
    # The snapshot handed over still has it pending: the new owner resumes it.
    loaded = await rig.snapshots.load(TOPIC, 0)
    assert loaded is not None
    assert loaded[1]["S"].tracks[0].live.pending.id == request.id


async def test_resume_adopts_a_policy_already_published_for_the_shift(rig: Rig) -> None:
    request = await rig.requested("S")
    queued = dataclasses.replace(request, id="S@market:0:999")
    assert rig.track("S").live.submit(queued) is False
    # Published before the crash, but the snapshot still had the request pending.
    published = outcome(request, publish=True, seed=3)
    before = policy_message(request, published, 3, MODELS["return"], {})
    rig.policies.saved.append(before)
    rig.policies.versions["S"] = 3
    rig.learner.outcomes[queued.id] = outcome(queued, publish=False)
    await rig.publisher.resume([request])
    await rig.idle()
    assert [job.request_id for job in rig.learner.jobs] == [queued.id]  # not the request
    assert rig.sender.sent == []
    live = rig.track("S").live
    assert live.version == 3
    assert same_weights(live.weights, published.weights)
    assert live.pending is None
    assert rig.learner.jobs[0].parent_weights is not None
    assert same_weights(rig.learner.jobs[0].parent_weights, published.weights)


async def test_a_shift_found_again_after_a_restart_is_not_published_twice(rig: Rig) -> None:
    """Seen in make chaos: events processed again after a SIGKILL found the same shift (the
    same id), the stream already served its policy, and it was published a second time."""
    request = await rig.requested("S", live=3)
    before = dataclasses.replace(request, parent_version=2)  # as it was made the first time
    earlier = policy_message(before, outcome(before, publish=True, seed=3), 3, MODELS["return"], {})
    rig.policies.saved.append(earlier)  # version 3 is this very shift's policy
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=4)
    rig.publisher.submit(request)
    await rig.idle()
    assert rig.sender.sent == []
    live = rig.track("S").live
    assert (live.version, live.pending) == (3, None)


async def test_resume_resubmits_a_request_whose_shift_was_not_published(rig: Rig) -> None:
    request = await rig.requested("S")
    earlier = dataclasses.replace(
        request, shift=request.shift._replace(id="S@market:0:17"), id="S@market:0:17"
    )
    rig.policies.saved.append(
        policy_message(earlier, outcome(earlier, publish=True), 1, MODELS["return"], {})
    )
    rig.policies.versions["S"] = 1
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=4)
    await rig.publisher.resume([request])
    await rig.idle()
    assert [job.request_id for job in rig.learner.jobs] == [request.id]
    ((_, _, value, _),) = rig.sender.sent
    assert decode_message(value).version == 2
    assert rig.track("S").live.version == 2


def published_elsewhere(
    rig: Rig, request: AdaptationRequest, version: int, seed: int
) -> PolicyMessage:
    """A policy of the request's model published (and recorded as its latest) after the
    stream's snapshot, for another shift: the daemon that restarts from the snapshot did
    not know of it."""
    other = dataclasses.replace(
        request, shift=request.shift._replace(id=f"S@market:0:{version}0"), id="other"
    )
    message = policy_message(
        other, outcome(other, publish=True, seed=seed), version, MODELS["return"], {}
    )
    rig.policies.saved.append(message)
    rig.policies.versions[request.model] = version
    return message


def weights_of(message: PolicyMessage) -> dict[str, np.ndarray]:
    return params_from_bytes(message.weight_bytes())


async def test_a_policy_adapted_from_an_older_parent_than_the_latest_is_adapted_again(
    rig: Rig,
) -> None:
    """Issue 12, finding 4: after a restart from a snapshot older than the last
    publication, the next policy named the snapshot's version as its parent (a fork)."""
    request = await rig.requested("S", live=3)
    latest = published_elsewhere(rig, request, 4, seed=7)
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
    rig.publisher.submit(request)
    await rig.idle()

    first, second = rig.learner.jobs  # adapted again, from version 4
    assert (first.request_id, second.request_id) == (request.id, request.id)
    assert same_weights(first.parent_weights, weights(IN_DIM, seed=99))
    assert same_weights(second.parent_weights, weights_of(latest))
    ((_, _, value, _),) = rig.sender.sent
    message = decode_message(value)
    assert (message.version, message.parent_version) == (5, 4)
    live = rig.track("S").live
    assert (live.version, live.pending) == (5, None)
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="rebased") == 1
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="published") == 1
    assert rig.publisher.inflight == {}


async def test_a_latest_policy_of_other_inputs_is_no_parent(rig: Rig) -> None:
    """The model's latest policy was published before the task's inputs changed (features
    or the strategy task's ensemble): it cannot be adapted from or served, so the stream's
    own live policy stays the parent and the request is not adapted again (forever)."""
    request = await rig.requested("S", live=3)
    latest = published_elsewhere(rig, request, 4, seed=7)
    latest.features["names"] = [*latest.features["names"], "hedge_log_w_flat"]
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
    rig.publisher.submit(request)
    await rig.idle()

    assert [job.request_id for job in rig.learner.jobs] == [request.id]
    ((_, _, value, _),) = rig.sender.sent
    message = decode_message(value)
    assert (message.version, message.parent_version) == (5, 3)
    assert rig.track("S").live.version == 5
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="rebased") == 0


async def test_a_baseline_published_while_the_request_ran_becomes_its_parent(rig: Rig) -> None:
    """A retirement's baseline went live while the adaptation ran (the daemon's own
    publication, no restart): publishing the adaptation would name the retired version as
    its parent, a fork inside one running daemon."""
    request = await rig.requested("S", live=4)
    rig.learner.hold(request)
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
    rig.publisher.submit(request)
    await rig.learner.started(request)
    baseline = weights(IN_DIM, seed=42)
    assert rig.track("S").adopt_baseline(baseline, 5)
    rig.learner.release(request)
    await rig.idle()
    _, second = rig.learner.jobs
    assert same_weights(second.parent_weights, baseline)
    ((_, _, value, _),) = rig.sender.sent
    assert decode_message(value).parent_version == 5
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="rebased") == 1


async def test_a_rebased_request_the_gate_then_rejects_leaves_the_latest_live(rig: Rig) -> None:
    request = await rig.requested("S", live=3)
    latest = published_elsewhere(rig, request, 4, seed=7)
    runs = [outcome(request, publish=True, seed=1), outcome(request, publish=False)]
    adapt = rig.learner.adapt

    def second_run_rejected(job: AdaptJob, deadline_s: float) -> AdaptationOutcome:
        rig.learner.outcomes[request.id] = runs.pop(0)
        return adapt(job, deadline_s)

    rig.learner.adapt = second_run_rejected  # type: ignore[method-assign]
    rig.publisher.submit(request)
    await rig.idle()
    assert len(rig.learner.jobs) == 2
    assert rig.sender.sent == []
    live = rig.track("S").live
    assert (live.version, live.pending) == (4, None)
    assert same_weights(live.weights, weights_of(latest))
    assert rig.track("S").validator.version == 4  # an adapted policy: it is validated


async def test_recover_makes_restored_streams_serve_what_was_published_after_the_snapshot(
    rig: Rig,
) -> None:
    request = await rig.requested("S", live=3)
    rig.track("S").live.complete(request.id)
    await rig.requested("T", TP1, live=2)
    latest = published_elsewhere(rig, request, 4, seed=7)
    assert await rig.publisher.recover([TP0, TP1]) == 1
    live = rig.track("S").live
    assert live.version == 4 and same_weights(live.weights, weights_of(latest))
    assert "S" in rig.ownership.partitions[TP0].dirty
    assert rig.track("T", TP1).live.version == 2  # nothing newer published for it
    assert await rig.publisher.recover([TP0, TP1]) == 0  # caught up already


async def test_recover_adopts_a_published_baseline_without_validating_it(rig: Rig) -> None:
    request = await rig.requested("S", live=3)
    rig.track("S").live.complete(request.id)
    message = published_elsewhere(rig, request, 4, seed=7)
    rig.policies.saved[-1] = msgspec.structs.replace(
        message, validation={"retired_version": 3, "replaced_by": "baseline"}
    )
    assert await rig.publisher.recover([TP0]) == 1
    assert (rig.track("S").live.version, rig.track("S").validator.version) == (4, 0)


async def test_resume_rebases_a_request_whose_parent_is_older_than_the_latest(rig: Rig) -> None:
    request = await rig.requested("S", live=3)
    latest = published_elsewhere(rig, request, 4, seed=7)
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
    await rig.publisher.resume([request])
    await rig.idle()
    (job,) = rig.learner.jobs  # run once, from the latest
    assert same_weights(job.parent_weights, weights_of(latest))
    ((_, _, value, _),) = rig.sender.sent
    assert decode_message(value).parent_version == 4


async def test_a_failed_send_is_retried_and_counted(rig: Rig) -> None:
    request = await rig.requested("S")
    rig.learner.outcomes[request.id] = outcome(request, publish=True)
    rig.sender.failures.append(KafkaTimeoutError())
    rig.publisher.submit(request)
    await rig.idle()
    assert counter(rig.metrics, "adaptd_publish_errors_total") == 1
    ((_, _, value, _),) = rig.sender.sent
    version = decode_message(value).version
    assert rig.track("S").live.version == version == rig.policies.versions["S"]


async def test_a_retry_after_the_send_neither_sends_again_nor_draws_a_new_version(
    rig: Rig,
) -> None:
    """Seen in make chaos: Redis paused after the policy went out, recording it as the
    latest timed out, and the retry drew version 3 and sent the same policy again, naming
    the same parent as version 2."""
    request = await rig.requested("S", live=4)
    rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
    save = rig.policies.save_latest
    failures = [TimeoutError("redis paused")]

    async def flaky_save(message: PolicyMessage) -> None:
        if failures:
            raise failures.pop()
        await save(message)

    rig.policies.save_latest = flaky_save  # type: ignore[method-assign]
    rig.publisher.submit(request)
    await rig.idle()
    ((_, _, value, _),) = rig.sender.sent  # sent once
    assert decode_message(value).version == 5
    assert rig.policies.versions["S"] == 5  # one version drawn
    assert [m.version for m in rig.policies.saved] == [5]
    assert rig.track("S").live.version == 5
    assert counter(rig.metrics, "adaptd_publish_errors_total") == 1


async def test_a_policy_refused_for_good_is_not_retried_and_the_stream_moves_on(
    rig: Rig,
) -> None:
    request = await rig.requested("S")
    rig.learner.outcomes[request.id] = outcome(request, publish=True)
    before = rig.track("S").live.version
    refused = Undeliverable("policies", 2_000_000, MessageSizeTooLargeError())
    rig.sender.failures.append(refused)
    rig.publisher.submit(request)
    await asyncio.wait_for(rig.idle(), 10)
    assert rig.sender.sent == [] and rig.publisher.inflight == {}
    labels = {"topic": "policies", "error": "MessageSizeTooLargeError"}
    assert counter(rig.metrics, "adaptd_outputs_dropped_total", **labels) == 1
    assert counter(rig.metrics, "adaptd_adaptations_total", outcome="failed") == 1
    assert counter(rig.metrics, "adaptd_publish_errors_total") == 0  # not retried
    assert rig.track("S").live.version == before
    assert rig.track("S").live.pending is None  # settled: the next shift can adapt


async def test_drain_waits_for_the_requests_in_flight(rig: Rig) -> None:
    request = await rig.requested("S")
    rig.learner.outcomes[request.id] = outcome(request, publish=True)
    rig.learner.hold(request)
    rig.publisher.submit(request)
    await rig.learner.started(request)
    drain = asyncio.create_task(rig.publisher.drain(None, 30.0))
    rig.learner.release(request)
    assert await drain == 0
    assert rig.publisher.inflight == {}
    assert len(rig.sender.sent) == 1
    assert rig.track("S").live.version == 1
    assert rig.publisher.closing


async def test_drain_cancels_what_outlives_the_grace_period(rig: Rig) -> None:
    a = await rig.requested("A", TP0)
    b = await rig.requested("B", TP1)
    for request in (a, b):
        rig.learner.outcomes[request.id] = outcome(request, publish=True)
        rig.learner.hold(request)
        rig.publisher.submit(request)
    await rig.learner.started(a)
    assert await rig.publisher.drain([TP0], 0.05) == 1
    assert list(rig.publisher.inflight) == [b.id]  # another partition's: left running
    assert not rig.publisher.closing
    assert rig.ownership.owns(a)  # still pending: the snapshot keeps it
    rig.learner.release(a)
    rig.learner.release(b)
    await rig.idle()
    assert [decode_message(v).model_id for _, _, v, _ in rig.sender.sent] == ["B"]
    assert rig.track("A", TP0).live.version == 0
    assert rig.track("A", TP0).live.pending is a


async def test_after_closing_queued_requests_do_not_start(rig: Rig) -> None:
    first = await rig.requested("S")
    queued = dataclasses.replace(first, id="S@market:0:999")
    assert rig.track("S").live.submit(queued) is False
    rig.learner.outcomes[first.id] = outcome(first, publish=True)
    rig.learner.hold(first)
    rig.publisher.submit(first)
    await rig.learner.started(first)
    drain = asyncio.create_task(rig.publisher.drain(None, 30.0))
    rig.learner.release(first)
    assert await drain == 0
    assert [job.request_id for job in rig.learner.jobs] == [first.id]
    assert rig.publisher.inflight == {}
    # Handed over and pending, so the snapshot keeps it for the next start.
    pending = rig.track("S").live.pending
    assert pending is not None and pending.id == queued.id
    assert pending.parent_version == 1


@contextlib.asynccontextmanager
async def validating() -> AsyncIterator[Rig]:
    """A rig whose stream validates its live policy (after 20 examples) and has served a
    random policy, version 3, since its 60th event: far worse than the zero forecast."""
    settings = small_settings(adaptation={"validate_min_examples": 20})
    metrics = Metrics()
    snapshots = MemorySnapshots()
    ownership = Ownership(
        FakeConsumer(), snapshots, Settled(), config_of(settings), metrics, MAX_BYTES
    )
    await ownership.assign({TP0})
    learner, sender, policies, worker = (
        ScriptedLearner(),
        RecordingSender(),
        MemoryPolicies(),
        TorchWorker(),
    )
    models = {m.name: m for m in task_models(settings, tasks_of(settings))}
    publisher = Publisher(
        ownership,
        worker,
        learner,
        sender,
        policies,
        models,
        policy_topic="policies",
        deadline_s=DEADLINE_S,
        algorithm=lambda updates: algorithm_of(settings, updates),
        metrics=metrics,
    )
    try:
        await ownership.process({TP0: market_records("S", 0)[:60]}, {}, Effects())
        rig = Rig(publisher, ownership, learner, sender, policies, snapshots, metrics)
        rig.track("S").adopt(3, weights(IN_DIM, seed=99), None)
        policies.versions["S"] = 3
        yield rig
    finally:
        await worker.aclose()


async def test_a_losing_policy_is_retired_and_its_baseline_published_in_its_place() -> None:
    async with validating() as rig:
        ownership, publisher, sender, policies, metrics = (
            rig.ownership,
            rig.publisher,
            rig.sender,
            rig.policies,
            rig.metrics,
        )
        track = rig.track("S")
        out = Effects()
        await ownership.process({TP0: market_records("S", 0)[60:150]}, {}, out)
        (retired,) = out.retirements
        assert (retired.model, retired.task, retired.verdict.version) == ("S", "return", 3)
        assert retired.verdict.examples >= 20 and retired.verdict.excess > 0
        # The stream serves the baseline at once: the zero network outputs the zero forecast.
        assert track.live.model is not None
        assert np.all(track.live.model.predict(np.ones((2, IN_DIM), np.float32)) == 0.0)
        with capture_logs() as logs:
            publisher.retire(retired)
            while publisher.inflight:
                await asyncio.gather(*(t for _, t in publisher.inflight.values()))
        ((topic, key, value, _),) = sender.sent
        message = decode_message(value)
        assert (topic, key, message.version, message.parent_version) == ("policies", b"S", 4, 3)
        assert message.validation["retired_version"] == 3
        assert message.validation["replaced_by"] == "baseline"
        assert message.validation["baseline"] == "zero forecast"
        assert "lost to the zero forecast" in message.validation["reason"]
        assert Policy(message).predict(np.ones(IN_DIM, np.float32)) == 0.0
        assert policies.saved == [message]
        assert (track.live.version, track.validator.version) == (4, 0)  # not itself validated
        assert counter(metrics, "adaptd_policies_retired_total", task="return") == 1
        assert [e["event"] for e in logs] == ["policy retired: it loses to its baseline"]


async def test_a_retirement_publishes_no_baseline_when_a_newer_policy_was_published() -> None:
    """Version 4 went out after the snapshot that still serves version 3: retiring version 3
    would publish a baseline naming it as the parent (a fork); version 4 goes live instead."""
    async with validating() as rig:
        held = weights(IN_DIM, seed=5)
        model = MODELS["return"]
        rig.policies.saved.append(
            build_message(
                model_id="S",
                version=4,
                parent_version=3,
                stream="S",
                weights=held,
                architecture=model.architecture,
                features=model.features,
                task=model.description,
            )
        )
        out = Effects()
        await rig.ownership.process({TP0: market_records("S", 0)[60:150]}, {}, out)
        (retired,) = out.retirements
        rig.publisher.retire(retired)
        await rig.idle()
        assert rig.sender.sent == []
        live = rig.track("S").live
        assert live.version == 4 and same_weights(live.weights, held)
        assert rig.track("S").validator.version == 4
        assert counter(rig.metrics, "adaptd_policies_retired_total", task="return") == 0


async def test_a_retirement_and_an_adaptation_published_together_do_not_fork() -> None:
    """Seen in make chaos: the baseline of retired version 3 went out as version 4 while an
    adaptation made from version 3 was publishing, and went out as version 5 naming 3."""
    async with validating() as rig:
        out = Effects()
        await rig.ownership.process({TP0: market_records("S", 0)[60:]}, {}, out)
        (retired,) = out.retirements
        (request,) = out.requests
        assert request.parent_version == 3
        rig.learner.outcomes[request.id] = outcome(request, publish=True, seed=1)
        send = rig.sender.send_all

        async def slow_send(records, on_drop=None):
            await asyncio.sleep(0.05)  # the adaptation finishes while the baseline is sent
            await send(records)

        rig.sender.send_all = slow_send  # type: ignore[method-assign]
        rig.publisher.retire(retired)
        rig.publisher.submit(request)
        await rig.idle()
        chain = sorted(
            (decode_message(value) for _, _, value, _ in rig.sender.sent), key=lambda m: m.version
        )
        assert [(m.version, m.parent_version) for m in chain] == [(4, 3), (5, 4)]
        assert chain[0].validation["retired_version"] == 3
        assert rig.track("S").live.version == 5
