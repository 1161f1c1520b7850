"""Bounded per-stream state (issue 12, finding 3): at most ``max_live_streams`` streams in
memory, the least recently used evicted to their partition's snapshot after each commit and
restored on their next event, and at most ``max_stored_streams`` per partition kept at all.

Eviction must change nothing but memory: the same records give the same effects (shifts,
episodes, adaptation requests, dead letters) with a limit of 3 live streams as without one.
"""

from __future__ import annotations

import dataclasses

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
    shifted,
    small_settings,
)

from adaptd.daemon.core import state_format
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.service.gauges import update_gauges
from adaptd.daemon.service.ownership import Ownership

SETTINGS = small_settings()
CONFIG = config_of(SETTINGS)
TP0 = TopicPartition(TOPIC, 0)
STREAMS = [f"S{i}" for i in range(8)]


def interleaved(batch: int = 50) -> list[list]:
    """Eight streams of 300 events each (each shifts once), in batches in which only two
    streams have events, so every stream is idle for a while and then comes back."""
    per = {s: market_records(s, 0, seed=i, events=300) for i, s in enumerate(STREAMS)}
    batches, offset = [], 0
    for start in range(0, 300, batch):
        for pair in range(0, len(STREAMS), 2):
            records = []
            for s in STREAMS[pair : pair + 2]:
                for rec in per[s][start : start + batch]:
                    records.append(dataclasses.replace(rec, offset=offset))
                    offset += 1
            batches.append(records)
    return batches


async def run(max_live: int, max_stored: int = 100_000) -> tuple[Ownership, list, MemorySnapshots]:
    snapshots, metrics = MemorySnapshots(), Metrics()
    ownership = Ownership(
        FakeConsumer(),
        snapshots,
        Settled(),
        CONFIG,
        metrics,
        MAX_BYTES,
        max_live_streams=max_live,
        max_stored_streams=max_stored,
    )
    await ownership.assign({TP0})
    effects = []
    for records in interleaved():
        out = Effects()
        await ownership.process({TP0: records}, {}, out)
        effects.append(out)
        # Requests complete at once here: a stream with one in flight is never evicted.
        for request in out.requests:
            await ownership.settle_request(request, None)
        await ownership.commit()
    return ownership, effects, snapshots


def summary(effects: list[Effects]) -> list:
    return [
        (
            [(s.id, s.shift.change_index, s.segment) for s in out.shifts],
            [
                (task, e.stream, e.segment, e.regime, e.n, e.first_offset)
                for task, e in out.episodes
            ],
            [r.id for r in out.requests],
            out.processed,
            len(out.dead_letters),
        )
        for out in effects
    ]


async def test_evicting_changes_nothing_but_memory() -> None:
    unbounded, expected, _ = await run(max_live=1000)
    bounded, got, snapshots = await run(max_live=3)
    assert summary(got) == summary(expected)
    assert sum(len(out.shifts) for out in got) >= len(STREAMS)  # every stream shifted
    part = bounded.partitions[TP0]
    assert len(part.streams) <= 3
    assert set(part.streams) | set(part.evicted) == set(STREAMS)
    metrics = bounded.metrics
    assert counter(metrics, "adaptd_stream_evictions_total") >= 5 * 5
    assert counter(metrics, "adaptd_stream_restores_total") >= 5 * 4
    # The same final state, evicted or not: each stream as stored equals the unbounded one.
    final = unbounded.partitions[TP0].streams
    stored = snapshots.stored[TOPIC, 0][1]
    for name in STREAMS:
        live = part.streams.get(name)
        state = live if live is not None else state_format.loads(stored[name])
        assert state.index == final[name].index
        assert state.max_ts_ms == final[name].max_ts_ms


async def test_the_least_recently_used_streams_are_evicted_first() -> None:
    bounded, _, _ = await run(max_live=2)
    # The last batch had S6 and S7: they stay, everyone else was evicted, oldest first.
    part = bounded.partitions[TP0]
    assert list(part.streams) == ["S6", "S7"]
    assert list(part.evicted)[:2] == ["S0", "S1"]
    update_gauges(bounded)
    assert bounded.metrics.registry.get_sample_value("adaptd_streams") == 2
    assert bounded.metrics.registry.get_sample_value("adaptd_streams_evicted") == 6


async def test_beyond_max_stored_the_streams_seen_longest_ago_are_forgotten() -> None:
    bounded, _, snapshots = await run(max_live=2, max_stored=5)
    part = bounded.partitions[TP0]
    assert len(part.streams) + len(part.evicted) <= 5
    stored = snapshots.stored[TOPIC, 0][1]
    assert set(stored) == set(part.streams) | set(part.evicted)  # the others deleted
    assert counter(bounded.metrics, "adaptd_streams_forgotten_total") >= 3
    # A forgotten stream that comes back starts afresh, as a new one (it warms up again).
    gone = sorted(set(STREAMS) - set(stored))[0]
    out = Effects()
    again = market_records(gone, 0, events=5, first_offset=part.next_offset)
    await bounded.process({TP0: again}, {}, out)
    assert part.streams[gone].index == 5


async def test_a_stream_with_an_adaptation_in_flight_is_not_evicted() -> None:
    snapshots, metrics = MemorySnapshots(), Metrics()
    ownership = Ownership(
        FakeConsumer(), snapshots, Settled(), CONFIG, metrics, MAX_BYTES, max_live_streams=1
    )
    await ownership.assign({TP0})
    out = Effects()
    await ownership.process({TP0: market_records("A", 0)}, {}, out)
    (request,) = out.requests  # pending, never settled here
    quiet = market_records("B", 0, events=50, first_offset=300)
    await ownership.process({TP0: quiet}, {}, Effects())
    await ownership.commit()
    part = ownership.partitions[TP0]
    assert "A" in part.streams and list(part.evicted) == ["B"]  # B is newer, but A must stay
    assert ownership.owns(request)


async def test_a_restored_partition_keeps_only_the_limit_in_memory() -> None:
    _, _, snapshots = await run(max_live=1000)
    metrics = Metrics()
    ownership = Ownership(
        FakeConsumer({TP0: 1200}), snapshots, Settled(), CONFIG, metrics, MAX_BYTES,
        max_live_streams=3,
    )  # fmt: skip
    await ownership.assign({TP0})
    part = ownership.partitions[TP0]
    assert len(part.streams) == 3 and len(part.evicted) == 5
    assert set(part.streams) | set(part.evicted) == set(STREAMS)


async def test_partitions_assigned_together_share_the_room_and_keep_their_latest() -> None:
    snapshots = MemorySnapshots()
    second = TopicPartition(TOPIC, 1)
    for tp in (TP0, second):  # five streams a partition, saved one after another
        part = PartitionState(tp.topic, tp.partition, CONFIG, MAX_BYTES)
        for i, name in enumerate(STREAMS[:5]):
            shifted(part, f"{name}-{tp.partition}", seed=i)
        for i, (name, state) in enumerate(part.streams.items()):
            await snapshots.save(tp.topic, tp.partition, 100 + i, {name: state}, [])
    ownership = Ownership(
        FakeConsumer({TP0: 104, second: 104}), snapshots, Settled(), CONFIG, Metrics(),
        MAX_BYTES, max_live_streams=4,
    )  # fmt: skip
    await ownership.assign({TP0, second})
    for tp in (TP0, second):
        part = ownership.partitions[tp]
        # Two each, not four and none; and the two saved last.
        assert sorted(part.streams) == [f"S3-{tp.partition}", f"S4-{tp.partition}"]
        assert len(part.evicted) == 3
