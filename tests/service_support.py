"""Fakes of the service's collaborators, each implementing the Protocol of the module that uses
it, and real stream state to drive them: settings small enough that a synthetic market shifts
within a few hundred events, its Kafka records, and adaptation requests made by processing them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from daemon_support import regime_stream

from adaptd.daemon.config.settings import Settings, load_settings
from adaptd.daemon.core.effects import AdaptationRequest, Effects
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.core.policy import PolicyMessage
from adaptd.daemon.core.state_format import dumps, loads
from adaptd.daemon.core.stream import StreamConfig, StreamState
from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.service.configs import stream_config, tasks_of
from adaptd.daemon.service.ownership import Ownership

TOPIC = "market"
MAX_BYTES = 1024


def small_settings(**sections: Any) -> Settings:
    """Settings with short warm-ups and small adaptation sets (a shift within 250 events)."""
    adaptation = {"shots": 12, "query_size": 4} | sections.pop("adaptation", {})
    return load_settings(
        environ={},
        features={"momentum_horizons": [5, 20], "warmup_events": 20, "label_horizon": 3},
        detection={"warmup_events": 100, "cooldown_events": 50},
        adaptation=adaptation,
        replay={"episode_size": 16},
        **sections,
    )


def config_of(settings: Settings) -> StreamConfig:
    return stream_config(settings, tasks_of(settings))


def market_records(
    stream: str,
    partition: int = 0,
    *,
    seed: int = 0,
    first_offset: int = 0,
    events: int = 300,
    day: int = 0,
) -> list[ConsumerRecord]:
    """Real encoded events of one stream, one a minute from ``day``, as the consumer delivers
    them; with the default 300 events it shifts once (around event 220) and asks for one
    adaptation per task."""
    before = min(200, events)
    t0_ms = 1_700_000_000_000 + day * 86_400_000
    pairs = regime_stream(stream, before, events - before, seed=seed, t0_ms=t0_ms)
    return [
        ConsumerRecord(TOPIC, partition, first_offset + i, 0, 0, key, value, None, 0, 0, ())
        for i, (key, value) in enumerate(pairs)
    ]


def shifted(partition: PartitionState, stream: str, *, seed: int = 0) -> list[AdaptationRequest]:
    """Feed a partition one stream's shifting market; the requests it made (now pending)."""
    out = Effects()
    first = 0 if partition.next_offset is None else partition.next_offset
    recs = market_records(stream, partition.partition, seed=seed, first_offset=first)
    partition.process(recs, {}, out)
    assert out.requests, "the synthetic market did not shift"
    return out.requests


def weights(in_dim: int, out_dim: int = 1, *, hidden: int = 4, seed: int = 0) -> dict[str, Any]:
    """A small policy's parameters, as the learner returns them."""
    rng = np.random.default_rng(seed)
    return {
        "layers.0.weight": rng.normal(size=(hidden, in_dim)).astype(np.float32),
        "layers.0.bias": rng.normal(size=hidden).astype(np.float32),
        "layers.2.weight": rng.normal(size=(out_dim, hidden)).astype(np.float32),
        "layers.2.bias": rng.normal(size=out_dim).astype(np.float32),
    }


def same_weights(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample's value (0.0 when it was never set)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


class FakeConsumer:
    """The consumer's side of ownership (``Committer``): committed offsets, seeks, commits and
    high watermarks in memory. ``fail_commits`` commits raise a ``KafkaError``; ``log`` is
    shared with the other fakes to check the order of calls."""

    def __init__(
        self,
        committed: Mapping[TopicPartition, int] | None = None,
        log: list[str] | None = None,
    ) -> None:
        self.offsets: dict[TopicPartition, int] = dict(committed or {})
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.high: dict[TopicPartition, int] = {}
        self.fail_commits = 0
        self.log = [] if log is None else log
        self.owned_at_commit: list[set[TopicPartition]] = []
        self.ownership: Ownership | None = None
        """When set, each commit notes which partitions it still owned then."""
        self.assigned: set[TopicPartition] = set()
        """The consumer's assignment (what ``assignment()`` returns)."""
        self.log_start: dict[TopicPartition, int] = {}
        """Each partition's first offset (0 when not given)."""

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.offsets.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append("commit")
        if self.ownership is not None:
            self.owned_at_commit.append(set(self.ownership.partitions))
        if self.fail_commits:
            self.fail_commits -= 1
            raise KafkaError("the group is rebalancing")
        self.commits.append(dict(offsets))
        self.offsets.update(offsets)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high.get(tp)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: self.log_start.get(tp, 0) for tp in partitions}


class MemorySnapshots:
    """Partition snapshots in memory (``Snapshots``), encoded like the Redis store's so a load
    is a copy: a save writes the given streams and the offset, and keeps the others."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.stored: dict[tuple[str, int], tuple[int, dict[str, bytes]]] = {}
        self.pending: dict[tuple[str, int], list[str]] = {}
        self.saves: list[tuple[TopicPartition, int, set[str]]] = []
        self.log = [] if log is None else log

    async def save(
        self,
        topic: str,
        partition: int,
        next_offset: int,
        streams: dict[str, StreamState],
        pending: list[str] | None = None,
    ) -> dict[str, int]:
        self.log.append("save")
        if pending is not None:
            self.pending[topic, partition] = list(pending)
        self.saves.append((TopicPartition(topic, partition), next_offset, set(streams)))
        _, blobs = self.stored.get((topic, partition), (0, {}))
        written = {name: dumps(state) for name, state in streams.items()}
        # The names in the order of their last save, as the Redis store's recency orders them.
        kept = {name: blob for name, blob in blobs.items() if name not in written}
        self.stored[topic, partition] = (next_offset, kept | written)
        return {name: len(blob) for name, blob in written.items()}

    async def load(self, topic: str, partition: int) -> tuple[int, dict[str, StreamState]] | None:
        found = self.stored.get((topic, partition))
        if found is None:
            return None
        offset, blobs = found
        return offset, {name: loads(blob) for name, blob in blobs.items()}

    async def restore(
        self, topic: str, partition: int, limit: int
    ) -> tuple[int, dict[str, StreamState], list[str]] | None:
        """As the Redis store: the pending streams first, then the most recently saved up to
        ``limit``; the names of the others."""
        found = self.stored.get((topic, partition))
        if found is None:
            return None
        offset, blobs = found
        first = [n for n in self.pending.get((topic, partition), []) if n in blobs]
        rest = [n for n in reversed(blobs) if n not in first][: max(limit - len(first), 0)]
        streams = {name: loads(blobs[name]) for name in first + rest}
        return offset, streams, [n for n in blobs if n not in streams]

    async def fetch(self, topic: str, partition: int, names: list[str]) -> dict[str, StreamState]:
        self.log.append("fetch")
        _, blobs = self.stored.get((topic, partition), (0, {}))
        return {name: loads(blobs[name]) for name in names if name in blobs}

    async def forget(self, topic: str, partition: int, names: list[str]) -> None:
        self.log.append("forget")
        _, blobs = self.stored.get((topic, partition), (0, {}))
        for name in names:
            blobs.pop(name, None)

    def put(self, tp: TopicPartition, offset: int, streams: Mapping[str, StreamState]) -> None:
        """A snapshot written earlier (by another daemon, say)."""
        blobs = {name: dumps(state) for name, state in streams.items()}
        self.stored[tp.topic, tp.partition] = (offset, blobs)


class Settled:
    """Effect storage as ownership sees it (``Settles``): ``settle`` waits for ``gate`` (open
    by default) and notes when it was entered and when it returned."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = [] if log is None else log
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def settle(self) -> None:
        self.log.append("settle")
        self.entered.set()
        await self.gate.wait()
        self.log.append("settled")


class MemoryPolicies:
    """Version counters and latest policies in memory (``PolicyRecords``)."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.saved: list[PolicyMessage] = []

    async def next_version(self, model_id: str) -> int:
        self.versions[model_id] = self.versions.get(model_id, 0) + 1
        return self.versions[model_id]

    async def save_latest(self, message: PolicyMessage) -> None:
        self.saved.append(message)

    async def latest(self, model_id: str) -> PolicyMessage | None:
        mine = [m for m in self.saved if m.model_id == model_id]
        return mine[-1] if mine else None

    async def latest_many(self, model_ids: list[str]) -> dict[str, PolicyMessage]:
        found = {m: await self.latest(m) for m in model_ids}
        return {m: message for m, message in found.items() if message is not None}


class RecordingSender:
    """The policy topic's sender (``Sender``): keeps what was sent, acknowledged at once;
    each call first raises the next of ``failures``, while there are any."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, Any]] = []
        self.failures: list[Exception] = []

    async def send_all(self, records: list[tuple[str, bytes | None, bytes, Any]]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.extend(records)
