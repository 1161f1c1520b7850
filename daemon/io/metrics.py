"""Prometheus metrics of the daemon: one prefix, base units, ``_total`` counters.

Each Daemon owns a registry, so several can live in one process (tests, the demo).
No label takes an unbounded value: streams and model ids never become labels; a
partition label is bounded by the topic's partition count.

>>> m = Metrics()
>>> m.dead_letters.labels(reason="invalid_json").inc()
>>> b"adaptd_dead_letters_total" in m.render()
True
"""

from __future__ import annotations

import asyncio
import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

PREFIX = "adaptd"

# Latency buckets in seconds: from sub-millisecond batch work up to the 10 s design bound.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_ADAPT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """All metric families of one daemon, registered on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            f"{PREFIX}_events", "Input events consumed, by outcome.", ["outcome"], registry=r
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Input events dead-lettered, by reason.",
            ["reason"],
            registry=r,
        )
        self.processing_latency = Histogram(
            f"{PREFIX}_processing_latency_seconds",
            "Time from a fetched batch to its effects being stored, per batch.",
            buckets=_FAST,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_events",
            "Events per processed batch.",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10_000, 50_000),
            registry=r,
        )
        self.examples = Counter(
            f"{PREFIX}_examples",
            "Labelled examples formed once their horizon passed.",
            registry=r,
        )
        self.shifts = Counter(
            f"{PREFIX}_shifts",
            "Regime shifts detected, by the first detector and channel.",
            ["detector", "channel"],
            registry=r,
        )
        self.detection_delay = Histogram(
            f"{PREFIX}_detection_delay_events",
            "Events from where a shift's change was estimated to begin to its confirmation, "
            "by the first detector.",
            ["detector"],
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.regimes = Counter(
            f"{PREFIX}_regimes",
            "Shifts whose examples were classified into a regime: a known one or a new one.",
            ["outcome"],
            registry=r,
        )
        self.confirmations = Counter(
            f"{PREFIX}_shift_confirmations",
            "Shifts checked by detection.confirm: confirmed where the detectors placed them, "
            "relocated, or retracted (no shift published).",
            ["outcome"],
            registry=r,
        )
        self.detector_firings = Counter(
            f"{PREFIX}_detector_firings",
            "Raw detector firings, including those absorbed by debounce and cool-down.",
            ["detector", "channel"],
            registry=r,
        )
        self.adaptations = Counter(
            f"{PREFIX}_adaptations",
            "Adaptations by outcome: published, rejected by the query gate, failed, or rebased "
            "(made from an older parent than the model's latest policy, and made again).",
            ["outcome"],
            registry=r,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_adaptations_in_flight",
            "Adaptation requests and retirements being worked on (learner, gate, publication); "
            "requests queued behind one of their stream's are not counted.",
            registry=r,
        )
        self.retirements = Counter(
            f"{PREFIX}_policies_retired",
            "Live policies retired by continuous validation for losing to their task's "
            "baseline (the baseline was published in their place).",
            ["task"],
            registry=r,
        )
        self.adaptation_latency = Histogram(
            f"{PREFIX}_adaptation_latency_seconds",
            "Wall time of one few-shot adaptation on the torch worker.",
            buckets=_ADAPT,
            registry=r,
        )
        self.adaptation_queue = Histogram(
            f"{PREFIX}_adaptation_queue_seconds",
            "Wall time an adaptation request waited for the torch worker.",
            buckets=_ADAPT,
            registry=r,
        )
        self.adaptation_deadline_hits = Counter(
            f"{PREFIX}_adaptation_deadline_hits",
            "Adaptations stopped early by their deadline.",
            registry=r,
        )
        self.shift_to_publish = Histogram(
            f"{PREFIX}_shift_to_publish_seconds",
            "Wall time from the shift's confirmation to the adapted policy's publication "
            "(includes waiting for the new regime's labelled examples).",
            buckets=(*_ADAPT, 60.0, 300.0),
            registry=r,
        )
        self.adapt_to_publish = Histogram(
            f"{PREFIX}_ready_to_publish_seconds",
            "Wall time from the K-th labelled example of a new regime to publication.",
            buckets=_ADAPT,
            registry=r,
        )
        self.query_loss = Histogram(
            f"{PREFIX}_query_loss",
            "Query-set MSE of adapted policies, by which policy.",
            ["policy"],
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0),
            registry=r,
        )
        self.replay_items = Gauge(
            f"{PREFIX}_replay_items", "Episodes held in the Redis reservoir.", registry=r
        )
        self.replay_seen = Gauge(
            f"{PREFIX}_replay_seen", "Distinct episodes ever offered to the reservoir.", registry=r
        )
        self.replay_inserts = Counter(
            f"{PREFIX}_replay_inserts",
            "Episodes offered to the reservoir, by result (stored, skipped by Algorithm R, "
            "duplicate redelivery, or held out of training to measure retention).",
            ["result"],
            registry=r,
        )
        self.meta_updates = Counter(
            f"{PREFIX}_meta_updates", "Meta-updates of the shared initialisation.", registry=r
        )
        self.meta_loss = Gauge(
            f"{PREFIX}_meta_query_loss",
            "Mean post-adaptation query loss of the last meta-training batch.",
            registry=r,
        )
        self.retention_ratio = Gauge(
            f"{PREFIX}_retention_ratio",
            "Retention of held-out regimes after the last meta round (reference query loss over "
            "current query loss of each regime's held-out episodes; 1 = nothing lost), mean "
            "and minimum over regimes.",
            ["stat"],
            registry=r,
        )
        self.retention_regimes = Gauge(
            f"{PREFIX}_retention_regimes",
            "(stream, regime) pairs whose held-out episodes the last retention evaluation covered.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag",
            "High watermark minus position, per input partition.",
            ["partition"],
            registry=r,
        )
        self.snapshots_refused = Counter(
            f"{PREFIX}_snapshot_states_refused",
            "Stream states in a partition snapshot refused: their seal did not match, they "
            "were unsealed where seals are required, or they could not be read (another "
            "version's classes, corrupt); the streams started afresh.",
            registry=r,
        )
        self.rewinds = Counter(
            f"{PREFIX}_partition_rewinds",
            "Fetched batches of a partition assigned but not restored yet, read again once it is "
            "(the consumer rewound to their first offset).",
            registry=r,
        )
        self.partition_stalls = Counter(
            f"{PREFIX}_partition_stalls",
            "Times an input partition was found stalled: records waiting, its position not "
            "moving for kafka.stall_timeout_s.",
            registry=r,
        )
        self.partitions_stalled = Gauge(
            f"{PREFIX}_partitions_stalled",
            "Input partitions stalled now (they fail /readyz).",
            registry=r,
        )
        self.write_wait = Gauge(
            f"{PREFIX}_write_wait_seconds",
            "How long the oldest pending write to Kafka or Redis has waited (failing and "
            "retried, or unanswered); 0 when none is pending.",
            registry=r,
        )
        self.loop_lag = Gauge(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop ran a 100 ms timer, last measurement.",
            registry=r,
        )
        self.loop_tasks = Gauge(
            f"{PREFIX}_event_loop_tasks",
            "asyncio tasks alive on the event loop, sampled every 2 s (a count that keeps "
            "growing is a task leak).",
            registry=r,
        )
        self.commits = Counter(
            f"{PREFIX}_commits", "Offset commits, by result.", ["result"], registry=r
        )
        self.redis_errors = Counter(
            f"{PREFIX}_redis_errors",
            "Redis operations that failed and were retried.",
            registry=r,
        )
        self.send_errors = Counter(
            f"{PREFIX}_send_errors",
            "Sends of dead letters and shifts to Kafka that failed and were retried.",
            registry=r,
        )
        self.outputs_dropped = Counter(
            f"{PREFIX}_outputs_dropped",
            "Records the brokers refused for good (too large, invalid topic): dropped, not "
            "retried, so their partition moves on; by topic and error.",
            ["topic", "error"],
            registry=r,
        )
        self.meta_errors = Counter(
            f"{PREFIX}_meta_errors",
            "Meta-training rounds that failed (retried next round).",
            registry=r,
        )
        self.publish_errors = Counter(
            f"{PREFIX}_publish_errors",
            "Policy publications that failed and were retried.",
            registry=r,
        )
        self.assigned_partitions = Gauge(
            f"{PREFIX}_assigned_partitions",
            "Input partitions assigned to this daemon.",
            registry=r,
        )
        self.streams = Gauge(
            f"{PREFIX}_streams", "Streams with live state in this daemon.", registry=r
        )
        self.streams_evicted = Gauge(
            f"{PREFIX}_streams_evicted",
            "Streams of the owned partitions whose state is in Redis only "
            "(state.max_live_streams).",
            registry=r,
        )
        self.stream_evictions = Counter(
            f"{PREFIX}_stream_evictions",
            "Streams evicted from memory to their partition snapshot.",
            registry=r,
        )
        self.stream_restores = Counter(
            f"{PREFIX}_stream_restores",
            "Evicted streams restored from Redis on their next event.",
            registry=r,
        )
        self.streams_forgotten = Counter(
            f"{PREFIX}_streams_forgotten",
            "Evicted streams deleted from Redis (state.max_stored_streams).",
            registry=r,
        )
        self.stream_snapshot_bytes = Histogram(
            f"{PREFIX}_stream_snapshot_bytes",
            "Size of one stream's compressed state as written to Redis.",
            buckets=(1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6),
            registry=r,
        )
        self.build = Info(f"{PREFIX}_build", "Build information.", registry=r)

    def set_build_info(self, version: str, torch_version: str) -> None:
        self.build.info(
            {"version": version, "python": platform.python_version(), "torch": torch_version}
        )

    def count_tasks(self) -> None:
        """Sets the task gauge; called on the daemon's event loop."""
        self.loop_tasks.set(len(asyncio.all_tasks()))

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
