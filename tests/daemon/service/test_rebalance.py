"""The rebalance listener joins ownership and the publisher: on revocation it drains the
partitions' adaptations, then revokes them; on assignment it catches the restored streams up
with what was published after their snapshots, then resumes what they had in flight. Both
sides are fakes that note the calls in one log."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from adaptd.daemon.service.rebalance import RebalanceListener

TP0, TP1, TP2 = (TopicPartition("market", p) for p in range(3))
GRACE_S = 7.5


class FakeOwnership:
    def __init__(self, log: list[tuple[Any, ...]], owned: set[TopicPartition]) -> None:
        self.log = log
        self.partitions = dict.fromkeys(owned)
        self.resumable: list[str] = []

    async def assign(self, assigned: set[TopicPartition]) -> list[str]:
        self.log.append(("assign", set(assigned)))
        return self.resumable

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        self.log.append(("revoke", set(revoked)))


class FakePublisher:
    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    async def drain(self, tps: list[TopicPartition], timeout_s: float) -> int:
        self.log.append(("drain", set(tps), timeout_s))
        return 0

    async def recover(self, tps: set[TopicPartition]) -> int:
        self.log.append(("recover", set(tps)))
        return 0

    async def resume(self, requests: list[str]) -> None:
        self.log.append(("resume", requests))


def listener(owned: set[TopicPartition]) -> tuple[RebalanceListener, FakeOwnership, list]:
    log: list[tuple[Any, ...]] = []
    ownership = FakeOwnership(log, owned)
    publisher = FakePublisher(log)
    return RebalanceListener(ownership, publisher, GRACE_S), ownership, log  # type: ignore[arg-type]


async def test_revocation_drains_the_owned_partitions_then_revokes_them() -> None:
    rebalance, _, log = listener({TP0, TP1})
    await rebalance.on_partitions_revoked({TP1, TP2})  # TP2 was never ours
    assert log == [("drain", {TP1}, GRACE_S), ("revoke", {TP1})]


async def test_revoking_nothing_owned_does_nothing() -> None:
    rebalance, _, log = listener({TP0})
    await rebalance.on_partitions_revoked({TP1, TP2})
    await rebalance.on_partitions_revoked(set())
    assert log == []


async def test_assignment_resumes_what_the_restored_partitions_had_in_flight() -> None:
    rebalance, ownership, log = listener(set())
    ownership.resumable = ["S@market:0:220", "T@market:1:301"]
    await rebalance.on_partitions_assigned({TP0, TP1})
    assert log == [
        ("assign", {TP0, TP1}),
        ("recover", {TP0, TP1}),  # before resuming: a resumed request's parent is then known
        ("resume", ["S@market:0:220", "T@market:1:301"]),
    ]


async def test_an_assignment_with_nothing_in_flight_resumes_nothing() -> None:
    rebalance, _, log = listener(set())
    await rebalance.on_partitions_assigned({TP2})
    assert log == [("assign", {TP2}), ("recover", {TP2}), ("resume", [])]


async def test_partitions_are_taken_only_once_the_learner_is_ready() -> None:
    """The group is joined while the learner process starts: an assignment that comes first
    waits for it, so nothing is restored or resumed before the checkpoints are."""
    log: list[tuple[Any, ...]] = []
    ready = asyncio.Event()
    rebalance = RebalanceListener(
        FakeOwnership(log, set()),  # type: ignore[arg-type]
        FakePublisher(log),  # type: ignore[arg-type]
        GRACE_S,
        ready,
    )
    assigning = asyncio.create_task(rebalance.on_partitions_assigned({TP0}))
    await asyncio.sleep(0.05)
    assert log == [] and not assigning.done()
    ready.set()
    await asyncio.wait_for(assigning, 1.0)
    assert log == [("assign", {TP0}), ("recover", {TP0}), ("resume", [])]
