"""The gauges of the partitions this daemon owns, and the stall watch over them: consumer
lag per partition, streams in memory and evicted, and partitions that do not advance while
records wait (logged once with their state and what every task waits on, counted, and failing
``/readyz``)."""

from __future__ import annotations

import time

from ..io.diagnostics import snapshot
from ..io.logs import get_logger
from .ownership import Ownership

log = get_logger("adaptd.ownership")

__all__ = ["update_gauges"]


def update_gauges(ownership: Ownership, now: float | None = None) -> None:
    """Consumer lag per partition, the number of streams owned, and stalled partitions
    (``now``: a monotonic time in seconds)."""
    o = ownership
    now = time.monotonic() if now is None else now
    for tp, part in o.partitions.items():
        high = o.consumer.highwater(tp)
        position = part.next_offset if part.next_offset is not None else o.starts.get(tp)
        if high is not None and position is not None:
            o.metrics.consumer_lag.labels(partition=str(tp.partition)).set(max(high - position, 0))
        if o.stalls.observe(tp, position, high, now):
            o.metrics.partition_stalls.inc()
            log.warning(
                "partition stalled: records wait and its position does not move",
                topic=tp.topic,
                partition=tp.partition,
                position=position,
                highwater=high,
                committed=o.committed.get(tp),
                streams=len(part.streams),
                in_flight=len(part.in_flight()),
                for_s=round(o.stalls.stalled_for(tp, now), 1),
                processing=o.lock.locked(),
                tasks=snapshot(),
            )
    o.stalls.forget([tp for tp in o.stalls.stalled if tp not in o.partitions])
    o.metrics.partitions_stalled.set(len(o.stalls.stalled))
    o.metrics.streams.set(sum(len(p.streams) for p in o.partitions.values()))
    o.metrics.streams_evicted.set(sum(len(p.evicted) for p in o.partitions.values()))
