"""Ownership of input partitions, without a broker: assignment from the snapshot and the
committed offset, processing, settling adaptation requests, snapshot-then-commit, revocation
and gauges. The consumer, the snapshot store and effect storage are in-memory fakes; the
partition and stream states are the real ones, fed real encoded events."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from dataclasses import dataclass

import numpy as np
import pytest
from aiokafka import TopicPartition
from service_support import (
    MAX_BYTES,
    TOPIC,
    FakeConsumer,
    MemorySnapshots,
    Settled,
    config_of,
    counter,
    market_records,
    same_weights,
    shifted,
    small_settings,
    weights,
)
from structlog.testing import capture_logs

from adaptd.daemon.core.effects import AdaptationRequest, Effects, Published
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.core.track import TaskTrack
from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.service.gauges import update_gauges
from adaptd.daemon.service.ownership import Ownership

SETTINGS = small_settings()
CONFIG = config_of(SETTINGS)
IN_DIM = len(CONFIG.feature_names)
TP0, TP1, TP2 = (TopicPartition(TOPIC, p) for p in range(3))


@dataclass
class Rig:
    ownership: Ownership
    consumer: FakeConsumer
    snapshots: MemorySnapshots
    effects: Settled
    metrics: Metrics
    log: list[str]


def rig(
    committed: dict[TopicPartition, int] | None = None, snapshots: MemorySnapshots | None = None
) -> Rig:
    log: list[str] = []
    consumer = FakeConsumer(committed, log)
    snapshots = snapshots or MemorySnapshots(log)
    snapshots.log = log
    effects = Settled(log)
    metrics = Metrics()
    ownership = Ownership(consumer, snapshots, effects, CONFIG, metrics, MAX_BYTES)
    return Rig(ownership, consumer, snapshots, effects, metrics, log)


def snapshot_of(*streams: str) -> PartitionState:
    """A partition that processed a shifting market on each stream (each has a request
    pending), as another daemon would have snapshotted it."""
    part = PartitionState(TOPIC, 0, CONFIG, MAX_BYTES)
    for seed, stream in enumerate(streams):
        shifted(part, stream, seed=seed)
    return part


async def process(r: Rig, tp: TopicPartition, stream: str, **kw: int) -> Effects:
    part = r.ownership.partitions[tp]
    first = 0 if part.next_offset is None else part.next_offset
    out = Effects()
    recs = market_records(stream, tp.partition, first_offset=first, **kw)
    assert await r.ownership.process({tp: recs}, {}, out) == len(recs)
    return out


def track(r: Rig, request: AdaptationRequest) -> TaskTrack:
    part = r.ownership.partitions[r.ownership.partition_of(request)]
    return part.streams[request.stream].track(request.task)


# -- assignment -------------------------------------------------------------------------------


async def test_without_a_snapshot_streams_start_fresh_from_the_committed_offset() -> None:
    r = rig(committed={TP0: 40})
    assert not r.ownership.joined.is_set()
    with capture_logs() as logs:
        assert await r.ownership.assign({TP1, TP0}) == []
    p0, p1 = r.ownership.partitions[TP0], r.ownership.partitions[TP1]
    assert (p0.next_offset, p0.streams) == (40, {})
    assert (p1.next_offset, p1.streams) == (None, {})  # never committed: the reset policy
    assert r.ownership.committed == {TP0: 40, TP1: -1}
    assert r.consumer.seeks == []
    warning, assigned = logs
    assert (warning["partition"], warning["committed"], warning["snapshot_offset"]) == (0, 40, None)
    assert assigned["partitions"] == [f"{TOPIC}:0", f"{TOPIC}:1"] and assigned["owned"] == 2
    assert r.ownership.joined.is_set()
    assert counter(r.metrics, "adaptd_assigned_partitions") == 2


@pytest.mark.parametrize(
    "committed",
    [600, 120, None],
    ids=["snapshot-at-the-commit", "snapshot-ahead-of-the-commit", "snapshot-never-committed"],
)
async def test_a_snapshot_at_or_ahead_of_the_commit_is_restored(committed: int | None) -> None:
    before = snapshot_of("A", "B")
    assert before.next_offset == 600
    snapshots = MemorySnapshots()
    snapshots.put(TP0, 600, before.streams)
    r = rig(committed={} if committed is None else {TP0: committed}, snapshots=snapshots)
    await r.ownership.assign({TP0})
    part = r.ownership.partitions[TP0]
    assert part.next_offset == 600
    assert r.consumer.seeks == [(TP0, 600)]  # consume from the snapshot, not the commit
    assert r.ownership.committed == {TP0: -1 if committed is None else committed}
    assert sorted(part.streams) == ["A", "B"]
    for name, state in part.streams.items():
        assert state.config is CONFIG
        assert state.index == before.streams[name].index
        assert state.segment == before.streams[name].segment == 1
    # Restored, the partition goes on exactly as the one that was snapshotted.
    more = market_records("A", first_offset=600, seed=5)
    want, got = Effects(), Effects()
    before.process(more, {}, want)
    await r.ownership.process({TP0: more}, {}, got)
    assert (got.processed, len(got.episodes)) == (want.processed, len(want.episodes))
    assert part.streams["A"].index == before.streams["A"].index


async def test_a_snapshot_behind_the_commit_is_dropped_and_streams_start_fresh() -> None:
    snapshots = MemorySnapshots()
    snapshots.put(TP0, 300, snapshot_of("A").streams)
    r = rig(committed={TP0: 350}, snapshots=snapshots)
    with capture_logs() as logs:
        assert await r.ownership.assign({TP0}) == []
    part = r.ownership.partitions[TP0]
    assert (part.next_offset, part.streams) == (350, {})
    assert r.consumer.seeks == []
    warning, assigned = logs
    assert (warning["committed"], warning["snapshot_offset"]) == (350, 300)
    assert (assigned["event"], assigned["partitions"]) == ("partitions assigned", [f"{TOPIC}:0"])


async def test_assignment_returns_the_requests_the_snapshot_had_in_flight() -> None:
    before = snapshot_of("A", "B", "C")
    pending = {s: before.streams[s].tracks[0].live.pending for s in "ABC"}
    # C's request finished before the snapshot; A has a newer one queued behind its pending.
    c = pending.pop("C")
    assert c is not None
    assert before.settle(c, None) is None
    queued = dataclasses.replace(pending["A"], id="A@market:0:999")
    assert before.streams["A"].tracks[0].live.submit(queued) is False
    snapshots = MemorySnapshots()
    snapshots.put(TP0, 900, before.streams)
    r = rig(snapshots=snapshots)
    resumed = await r.ownership.assign({TP0})
    assert sorted(q.id for q in resumed) == sorted(p.id for p in pending.values())
    # They are the restored streams' own pending requests, so they settle there.
    assert all(r.ownership.owns(q) for q in resumed)
    assert not r.ownership.owns(queued)
    # A partition already owned is not taken over again.
    part = r.ownership.partitions[TP0]
    assert await r.ownership.assign({TP0, TP1}) == []
    assert r.ownership.partitions[TP0] is part
    assert r.consumer.seeks == [(TP0, 900)]


# -- processing -------------------------------------------------------------------------------


async def test_records_of_a_partition_revoked_meanwhile_are_skipped() -> None:
    r = rig()
    await r.ownership.assign({TP0, TP1})
    await r.ownership.revoke({TP1})
    a = market_records("A", 0, events=120)
    b = market_records("B", 1, events=80)
    out = Effects()
    assert await r.ownership.process({TP0: a, TP1: b}, {}, out) == 120
    assert out.processed == 120
    assert list(r.ownership.partitions) == [TP0]
    assert list(r.ownership.partitions[TP0].streams) == ["A"]
    assert r.ownership.partitions[TP0].next_offset == 120


async def test_records_fetched_before_their_partition_is_restored_are_read_again() -> None:
    # aiokafka fetches a new partition as soon as it knows its committed offset, before the
    # rebalance listener has restored it: such records were once skipped for good, and the
    # daemon sat idle with records waiting (issue 12, finding 5).
    r = rig()
    r.consumer.assigned = {TP0, TP1}
    await r.ownership.assign({TP0})
    a = market_records("A", 0, events=120)
    b = market_records("B", 1, events=80, first_offset=30)
    out = Effects()
    assert await r.ownership.process({TP0: a, TP1: b}, {}, out) == 120
    assert r.consumer.seeks == [(TP1, 30)]
    assert counter(r.metrics, "adaptd_partition_rewinds_total") == 1
    await r.ownership.assign({TP1})
    assert await r.ownership.process({TP1: b}, {}, out) == 80
    assert r.ownership.partitions[TP1].next_offset == 110


async def test_a_batch_fetched_during_an_assignment_waits_for_the_restore() -> None:
    snapshots = MemorySnapshots()
    snapshots.stored[(TOPIC, 0)] = (40, {})
    release = asyncio.Event()
    restore = snapshots.restore

    async def slow_restore(topic: str, partition: int, limit: int):  # type: ignore[no-untyped-def]
        await release.wait()
        return await restore(topic, partition, limit)

    snapshots.restore = slow_restore  # type: ignore[method-assign]
    r = rig(snapshots=snapshots)
    r.consumer.assigned = {TP0}
    assigning = asyncio.create_task(r.ownership.assign({TP0}))
    await asyncio.sleep(0)
    out = Effects()
    processing = asyncio.create_task(
        r.ownership.process({TP0: market_records("A", 0, events=60)}, {}, out)
    )
    await asyncio.sleep(0.01)
    assert not processing.done()  # waits for the partition, instead of dropping its records
    release.set()
    await assigning
    assert await processing == 60
    assert r.consumer.seeks == [(TP0, 40)]  # the restored position...
    assert out.processed == 20  # ...and the records below it, already processed, skipped
    assert r.ownership.partitions[TP0].next_offset == 60


# -- settling requests ------------------------------------------------------------------------


async def test_settling_adopts_the_published_policy_and_completes_the_request() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    (request,) = (await process(r, TP0, "S")).requests
    part = r.ownership.partitions[TP0]
    part.dirty.clear()
    assert r.ownership.owns(request)
    assert request.regime is not None
    w = weights(IN_DIM, seed=3)
    assert await r.ownership.settle_request(request, Published(3, w)) is None  # nothing queued
    live = track(r, request).live
    assert live.version == 3
    assert same_weights(live.weights, w)
    assert live.model is not None and live.model.in_dim == IN_DIM
    assert live.pending is None
    assert same_weights(track(r, request).regimes.book.policy(request.regime.regime_id), w)
    assert part.dirty == {"S"}  # the next commit snapshots it
    assert not r.ownership.owns(request)


async def test_settling_without_a_publication_keeps_the_live_policy() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    (request,) = (await process(r, TP0, "S")).requests
    r.ownership.partitions[TP0].dirty.clear()
    assert await r.ownership.settle_request(request, None) is None
    live = track(r, request).live
    assert (live.version, live.weights, live.pending) == (0, None, None)
    assert r.ownership.partitions[TP0].dirty == {"S"}


async def test_settling_hands_over_the_queued_request_with_the_new_parent() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    (first,) = (await process(r, TP0, "S")).requests
    queued = dataclasses.replace(first, id="S@market:0:999")
    assert track(r, first).live.submit(queued) is False
    w = weights(IN_DIM, seed=4)
    nxt = await r.ownership.settle_request(first, Published(5, w))
    assert nxt is not None and nxt.id == queued.id
    # Its gate compares against the policy live now, not the one live when it was made.
    assert (queued.parent_version, nxt.parent_version) == (0, 5)
    assert same_weights(nxt.parent_weights, w)
    assert track(r, first).live.pending is nxt
    assert r.ownership.owns(nxt) and not r.ownership.owns(first)


async def test_a_request_no_longer_pending_is_ignored() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    (request,) = (await process(r, TP0, "S")).requests
    copy = dataclasses.replace(request)  # same id, but not the stream's pending request
    assert not r.ownership.owns(copy)
    assert await r.ownership.settle_request(copy, Published(7, weights(IN_DIM))) is None
    assert track(r, request).live.pending is request
    assert track(r, request).live.version == 0
    w = weights(IN_DIM, seed=1)
    await r.ownership.settle_request(request, Published(2, w))
    r.ownership.partitions[TP0].dirty.clear()
    # Settled once: a second result for it changes nothing.
    assert await r.ownership.settle_request(request, Published(9, weights(IN_DIM, seed=2))) is None
    assert track(r, request).live.version == 2
    assert same_weights(track(r, request).live.weights, w)
    assert r.ownership.partitions[TP0].dirty == set()


async def test_a_request_of_a_revoked_partition_is_ignored() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    (request,) = (await process(r, TP0, "S")).requests
    await r.ownership.revoke({TP0})
    assert not r.ownership.owns(request)
    assert await r.ownership.settle_request(request, Published(1, weights(IN_DIM))) is None


# -- commits ----------------------------------------------------------------------------------


async def test_commit_snapshots_only_what_moved_or_changed() -> None:
    r = rig()
    await r.ownership.assign({TP0, TP1})
    (a,) = (await process(r, TP0, "A")).requests
    await process(r, TP1, "B", events=100)
    await r.ownership.commit()
    assert r.snapshots.saves == [(TP0, 300, {"A"}), (TP1, 100, {"B"})]
    assert r.consumer.commits == [{TP0: 300, TP1: 100}]
    assert r.ownership.committed == {TP0: 300, TP1: 100}
    assert r.log == ["settle", "settled", "save", "save", "commit"]
    assert counter(r.metrics, "adaptd_commits_total", result="ok") == 1

    await r.ownership.commit()  # nothing moved: nothing written, nothing committed
    assert len(r.snapshots.saves) == 2 and len(r.consumer.commits) == 1

    await process(r, TP0, "C", events=50)  # a new stream on TP0; A untouched
    await r.ownership.commit()
    assert r.snapshots.saves[2:] == [(TP0, 350, {"C"})]
    assert r.consumer.commits[1:] == [{TP0: 350}]

    await r.ownership.settle_request(a, Published(1, weights(IN_DIM)))  # changes A, moves no offset
    await r.ownership.commit()
    assert r.snapshots.saves[3:] == [(TP0, 350, {"A"})]
    assert r.consumer.commits[2:] == [{TP0: 350}]
    assert counter(r.metrics, "adaptd_commits_total", result="ok") == 3

    # The snapshot holds every stream as it is now.
    loaded = await r.snapshots.load(TOPIC, 0)
    assert loaded is not None
    offset, streams = loaded
    assert (offset, sorted(streams)) == (350, ["A", "C"])
    assert streams["A"].tracks[0].live.version == 1
    assert streams["A"].tracks[0].live.pending is None


async def test_commit_snapshots_only_after_the_effects_are_stored() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    await process(r, TP0, "A", events=60)
    r.effects.gate.clear()  # effects of the batch still being stored
    commit = asyncio.create_task(r.ownership.commit())
    await r.effects.entered.wait()
    assert r.snapshots.saves == [] and r.consumer.commits == []
    r.effects.gate.set()
    await commit
    assert r.log == ["settle", "settled", "save", "commit"]
    assert r.consumer.commits == [{TP0: 60}]


async def test_a_failed_commit_is_counted_and_leaves_the_snapshot_ahead() -> None:
    r = rig()
    await r.ownership.assign({TP0})
    await process(r, TP0, "A")
    r.consumer.fail_commits = 1
    with capture_logs() as logs:
        await r.ownership.commit()
    assert counter(r.metrics, "adaptd_commits_total", result="failed") == 1
    assert counter(r.metrics, "adaptd_commits_total", result="ok") == 0
    assert [e["event"] for e in logs] == ["offset commit failed"]
    assert r.snapshots.saves == [(TP0, 300, {"A"})]
    assert r.consumer.offsets == {} and r.ownership.committed == {TP0: -1}

    # Another daemon taking the partition over now resumes from the snapshot.
    other = rig(snapshots=r.snapshots)
    other.consumer.offsets = r.consumer.offsets
    await other.ownership.assign({TP0})
    assert other.consumer.seeks == [(TP0, 300)]
    assert list(other.ownership.partitions[TP0].streams) == ["A"]

    # This one commits the offset with its next commit.
    await r.ownership.commit()
    assert r.consumer.commits == [{TP0: 300}]
    assert r.ownership.committed == {TP0: 300}
    assert counter(r.metrics, "adaptd_commits_total", result="ok") == 1


async def test_revoke_commits_before_forgetting_the_partition() -> None:
    r = rig(committed={TP2: 7})
    r.consumer.ownership = r.ownership
    await r.ownership.assign({TP0, TP1, TP2})
    await process(r, TP0, "A", events=90)
    await process(r, TP1, "B", events=40)
    r.consumer.high = {TP0: 100, TP1: 100}
    update_gauges(r.ownership)
    assert counter(r.metrics, "adaptd_consumer_lag", partition="0") == 10
    await r.ownership.revoke({TP0, TP2})
    assert r.consumer.commits == [{TP0: 90}]  # TP2 had not moved
    assert r.consumer.owned_at_commit == [{TP0, TP1, TP2}]
    assert r.snapshots.saves == [(TP0, 90, {"A"})]
    assert list(r.ownership.partitions) == [TP1]
    assert r.ownership.committed == {TP1: -1}
    assert counter(r.metrics, "adaptd_assigned_partitions") == 1
    assert r.metrics.registry.get_sample_value("adaptd_consumer_lag", {"partition": "0"}) is None
    assert counter(r.metrics, "adaptd_consumer_lag", partition="1") == 60

    log = list(r.log)
    await r.ownership.revoke({TP0, TopicPartition("other", 0)})  # none of them owned
    assert r.log == log


# -- gauges -----------------------------------------------------------------------------------


async def test_gauges_export_the_lag_per_partition_and_the_streams_owned() -> None:
    r = rig(committed={TP1: 5})
    await r.ownership.assign({TP0, TP1, TP2})
    await process(r, TP0, "A", events=60)
    await process(r, TP0, "B", events=60)
    r.consumer.high = {TP0: 1000, TP1: 3}  # TP2's high watermark is not known yet
    update_gauges(r.ownership)
    value = r.metrics.registry.get_sample_value
    assert value("adaptd_consumer_lag", {"partition": "0"}) == 1000 - 120
    assert value("adaptd_consumer_lag", {"partition": "1"}) == 0  # never below zero
    assert value("adaptd_consumer_lag", {"partition": "2"}) is None
    assert value("adaptd_streams") == 2
    r.consumer.high[TP0] = 120
    update_gauges(r.ownership)
    assert value("adaptd_consumer_lag", {"partition": "0"}) == 0
    assert np.isclose(value("adaptd_assigned_partitions"), 3)


# -- shift confirmation off the event loop ----------------------------------------------------

CONFIRMING = SETTINGS.model_copy(
    update={"detection": SETTINGS.detection.model_copy(update={"confirm": True, "extreme_z": 0.0})}
)


def confirming_rig() -> Rig:
    r = rig()
    r.ownership.config = config_of(CONFIRMING)
    return r


async def test_confirmations_run_on_a_thread_and_give_what_process_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adaptd.daemon.service import ownership as module

    threads: list[threading.Thread] = []
    run_checks = module.run_checks

    def recording(checks: list) -> None:
        threads.append(threading.current_thread())
        run_checks(checks)

    monkeypatch.setattr(module, "run_checks", recording)
    r = confirming_rig()
    await r.ownership.assign({TP0})
    recs = market_records("A", 0)
    out = Effects()
    await r.ownership.process({TP0: recs}, {}, out)
    reference = Effects()
    PartitionState(TOPIC, 0, config_of(CONFIRMING), MAX_BYTES).process(recs, {}, reference)
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert sum(out.confirmations.values()) == len(threads) >= 1
    assert [s.shift for s in out.shifts] == [s.shift for s in reference.shifts]
    assert out.confirmations == reference.confirmations


async def test_a_batch_cancelled_while_confirming_still_finishes_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adaptd.daemon.service import ownership as module

    started, release = threading.Event(), threading.Event()
    run_checks = module.run_checks

    def slow(checks: list) -> None:
        started.set()
        release.wait(5.0)
        run_checks(checks)

    monkeypatch.setattr(module, "run_checks", slow)
    r = confirming_rig()
    await r.ownership.assign({TP0})
    recs = market_records("A", 0)
    out = Effects()
    task = asyncio.create_task(r.ownership.process({TP0: recs}, {}, out))
    await asyncio.to_thread(started.wait, 5.0)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # it waits for the confirmation, not abandons the batch
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    reference = Effects()
    PartitionState(TOPIC, 0, config_of(CONFIRMING), MAX_BYTES).process(recs, {}, reference)
    assert [s.shift for s in out.shifts] == [s.shift for s in reference.shifts]
    assert out.processed == len(recs)
    assert r.ownership.partitions[TP0].next_offset == len(recs)


# -- stalled partitions -------------------------------------------------------------------------


async def test_a_partition_that_does_not_advance_while_records_wait_is_reported() -> None:
    from adaptd.daemon.service.watchdog import StallWatch

    r = rig()
    r.ownership.stalls = StallWatch(30.0)
    await r.ownership.assign({TP0, TP1})
    await process(r, TP0, "A", events=50)
    await process(r, TP1, "B", events=50)
    r.consumer.high[TP0] = 80  # 30 records wait on TP0
    r.consumer.high[TP1] = 50  # TP1 has read everything
    with capture_logs() as logs:
        update_gauges(r.ownership, now=1000.0)
        update_gauges(r.ownership, now=1029.0)
        assert r.ownership.stalls.stalled == set()
        update_gauges(r.ownership, now=1031.0)
        update_gauges(r.ownership, now=1100.0)
    assert r.ownership.stalls.stalled == {TP0}
    assert counter(r.metrics, "adaptd_partition_stalls_total") == 1
    assert counter(r.metrics, "adaptd_partitions_stalled") == 1
    (line,) = [e for e in logs if e["log_level"] == "warning"]
    assert (line["partition"], line["position"], line["highwater"]) == (0, 50, 80)
    # It moves: no longer stalled.
    await process(r, TP0, "A", events=10)
    update_gauges(r.ownership, now=1101.0)
    assert r.ownership.stalls.stalled == set()
    assert counter(r.metrics, "adaptd_partitions_stalled") == 0


async def test_a_partition_that_never_processed_a_record_is_watched_from_its_log_start() -> None:
    # The skipped-records fault (finding 5) left partitions that had processed nothing: with
    # no position of their own, the watch could not see them.
    from adaptd.daemon.service.watchdog import StallWatch

    r = rig({TP1: 70})
    r.consumer.log_start = {TP0: 20}
    r.ownership.stalls = StallWatch(30.0)
    await r.ownership.assign({TP0, TP1})
    assert r.ownership.starts == {TP0: 20}  # TP1 starts at its commit
    r.consumer.high.update({TP0: 50, TP1: 90})
    with capture_logs() as logs:
        update_gauges(r.ownership, now=1000.0)
        update_gauges(r.ownership, now=1031.0)
    assert r.ownership.stalls.stalled == {TP0, TP1}
    assert sorted((e["partition"], e["position"]) for e in logs) == [(0, 20), (1, 70)]
    sample = r.metrics.registry.get_sample_value
    assert sample("adaptd_consumer_lag", {"partition": "0"}) == 30
    await r.ownership.revoke({TP0})
    assert r.ownership.starts == {}


async def test_a_snapshot_that_cannot_be_stored_is_retried_not_fatal() -> None:
    """Seen in make chaos: a commit while Redis restarted raised ConnectionError and ended
    the daemon. The snapshot is retried until Redis answers; then the offset is committed."""
    r = rig({TP0: 0})
    await r.ownership.assign({TP0})
    await r.ownership.process({TP0: market_records("A", 0, events=50)}, {}, Effects())
    save = r.snapshots.save
    failures = [ConnectionError("redis restarting")] * 2

    async def flaky_save(*args, **kwargs):
        if failures:
            raise failures.pop()
        return await save(*args, **kwargs)

    r.snapshots.save = flaky_save  # type: ignore[method-assign]
    await r.ownership.commit()
    assert r.ownership.committed[TP0] == 50
    assert counter(r.metrics, "adaptd_redis_errors_total") == 2
    assert r.snapshots.stored[TOPIC, 0][0] == 50
