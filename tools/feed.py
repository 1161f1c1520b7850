"""Replay market series into a Kafka topic as schema v1 events, at a chosen rate.

Each event is ``{"v": 1, "stream": ..., "ts": <epoch ms>, "price": ...}`` plus ``volume``,
``bid`` and ``ask`` when the series has them, encoded with ``msgspec.json`` (the same row
always gives the same bytes), keyed by the stream id so one stream stays in one partition
and in order. :func:`validate_series` runs every row through the daemon's own decoder and
order check first, so a feed that would be dead-lettered is known before it is sent.

Examples
--------
>>> import numpy as np
>>> from adaptd.adapters.tasks.series import MarketSeries
>>> series = MarketSeries("demo", "DEMO", np.array([1_700_000_000_000]), np.array([101.5]),
...                       np.array([20.0]), {}, "one row")
>>> encode_row(series, 0)
(b'DEMO', b'{"v":1,"stream":"DEMO","ts":1700000000000,"price":101.5,"volume":20.0}')
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
from aiokafka import AIOKafkaProducer

from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.core.schema import EventDecoder, Reason, Rejection

SCHEMA_VERSION = 1

# Throughput defaults; any of them can be overridden through producer_config.
PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "acks": "all",
    "enable_idempotence": False,  # Tansu (the test and demo broker) has no idempotent producers
    "linger_ms": 5,
    "max_batch_size": 65_536,
    "request_timeout_ms": 30_000,
}

TICK_S = 0.005  # at high rates, wake at most this often and send what has come due
MAX_BURST = 1_000  # then yield, so one fast stream cannot starve the others
MAX_PENDING = 20_000  # undelivered sends per stream before waiting for the oldest


class _Event(msgspec.Struct, omit_defaults=True):
    v: int
    stream: str
    ts: int
    price: float
    volume: float | None = None
    bid: float | None = None
    ask: float | None = None


_encode = msgspec.json.Encoder().encode


def encode_row(series: MarketSeries, i: int) -> tuple[bytes, bytes]:
    """The Kafka (key, value) of row ``i`` of ``series``."""
    if not 0 <= i < len(series):
        raise IndexError(f"row {i} outside 0..{len(series) - 1} of {series.stream}")

    def optional(column: Any) -> float | None:
        return None if column is None else float(column[i])

    event = _Event(
        v=SCHEMA_VERSION,
        stream=series.stream,
        ts=int(series.ts_ms[i]),
        price=float(series.price[i]),
        volume=optional(series.volume),
        bid=optional(series.bid),
        ask=optional(series.ask),
    )
    return series.stream.encode(), _encode(event)


class Validation(NamedTuple):
    """What the daemon would make of a feed's rows."""

    rows: int
    rejected: dict[str, int]
    """Rows the daemon would dead-letter, by reason (``docs/schema.md``)."""
    examples: list[str]
    """The first few of them: stream, row number (0-based), reason and detail."""

    @property
    def rejected_rows(self) -> int:
        return sum(self.rejected.values())

    def report(self) -> str:
        """One line per reason and per example, for the command's output."""
        if not self.rejected:
            return f"all {self.rows} rows are valid events"
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items()))
        lines = [
            f"{self.rejected_rows} of {self.rows} rows would be dead-lettered ({reasons})",
            *(f"  {example}" for example in self.examples),
        ]
        return "\n".join(lines)


MAX_EXAMPLES = 5


def validate_series(
    series: Sequence[MarketSeries],
    *,
    max_message_bytes: int,
    max_out_of_order_ms: int,
    limit: int | None = None,
) -> Validation:
    """Decode every row's record as the daemon would (the same decoder, at the daemon's
    ``kafka.max_message_bytes``, and its order check at ``features.max_out_of_order_ms``)
    and count what it would reject.

    >>> import numpy as np
    >>> old = MarketSeries("old", "OLD", np.array([-1_000, 0, 7_300_000_000_000]),
    ...                    np.array([1.0, 2.0, 3.0]), None, {}, "three rows")
    >>> result = validate_series([old], max_message_bytes=65_536, max_out_of_order_ms=0)
    >>> result.rejected
    {'bad_timestamp': 1}
    >>> print(result.report())  # doctest: +ELLIPSIS
    1 of 3 rows would be dead-lettered (1 bad_timestamp)
      OLD row 2: bad_timestamp (...)
    """
    decoder = EventDecoder(max_message_bytes)
    rejected: collections.Counter[str] = collections.Counter()
    examples: list[str] = []
    rows = 0
    for one in series:
        count = len(one) if limit is None else min(limit, len(one))
        newest: int | None = None
        for i in range(count):
            key, value = encode_row(one, i)
            event = decoder.decode(value, key)
            if not isinstance(event, Rejection):
                if newest is not None and event.ts_ms < newest - max_out_of_order_ms:
                    event = Rejection(
                        Reason.OUT_OF_ORDER,
                        f"event time {event.ts_ms} is {newest - event.ts_ms} ms before the "
                        f"stream's newest {newest}",
                    )
                else:
                    newest = event.ts_ms if newest is None else max(newest, event.ts_ms)
            if isinstance(event, Rejection):
                rejected[event.reason.value] += 1
                if len(examples) < MAX_EXAMPLES:
                    examples.append(f"{one.stream} row {i}: {event.reason.value} ({event.detail})")
        rows += count
    return Validation(rows, dict(rejected), examples)


async def produce_series(
    bootstrap_servers: str,
    topic: str,
    series: Sequence[MarketSeries],
    *,
    rate: float = 0.0,
    limit: int | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    producer_config: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Send every row of each series (or the first ``limit``) to ``topic``.

    The streams run concurrently, each on its own schedule: row ``j`` of a stream is due
    ``j / rate`` seconds after the start (a fixed schedule, so delays do not accumulate),
    and whatever has come due is sent as one burst per tick. ``rate=0`` sends as fast as
    the broker accepts. Every send is awaited until the broker acknowledges it.

    Parameters
    ----------
    bootstrap_servers, topic
        Where to send. The topic must exist.
    series
        The series to replay; their stream ids must be distinct.
    rate
        Events per second per stream; 0 means no pacing.
    limit
        At most this many events per stream.
    on_progress
        Called as ``on_progress(stream, acknowledged_so_far)`` after each burst.
    producer_config
        Extra ``AIOKafkaProducer`` arguments, overriding ``PRODUCER_DEFAULTS``.

    Returns the number of acknowledged events per stream id. Cancelling the call stops the
    streams and closes the producer (rows already handed to it are still delivered).
    """
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"rate must be a finite number >= 0, got {rate}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    streams = [s.stream for s in series]
    if len(set(streams)) != len(streams):
        raise ValueError(f"stream ids must be distinct, got {streams}")

    config = {**PRODUCER_DEFAULTS, **(producer_config or {})}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **config)
    await producer.start()
    acknowledged = dict.fromkeys(streams, 0)
    try:
        async with asyncio.TaskGroup() as group:
            for one in series:
                count = len(one) if limit is None else min(limit, len(one))
                group.create_task(
                    _replay(producer, topic, one, count, rate, acknowledged, on_progress),
                    name=f"feed-{one.stream}",
                )
        await producer.flush()
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:  # the usual case: one delivery error, others cancelled
            raise failed.exceptions[0] from failed
        raise
    finally:
        await producer.stop()
    return acknowledged


async def _replay(
    producer: AIOKafkaProducer,
    topic: str,
    series: MarketSeries,
    count: int,
    rate: float,
    acknowledged: dict[str, int],
    on_progress: Callable[[str, int], None] | None,
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending: collections.deque[asyncio.Future[Any]] = collections.deque()
    stream = series.stream
    row = 0

    def collect() -> None:
        # Taken in send order, so a failed delivery raises here, in this stream's task.
        while pending and pending[0].done():
            pending.popleft().result()
            acknowledged[stream] += 1

    async def wait_oldest() -> None:
        # asyncio.wait, not await: cancelling us must not cancel the producer's future.
        await asyncio.wait([pending[0]])
        collect()

    while row < count:
        if rate > 0:
            due = min(count, math.floor((loop.time() - start) * rate) + 1)
            if due <= row:
                await asyncio.sleep(max(start + row / rate - loop.time(), TICK_S))
                continue
        else:
            due = count
        end = min(due, row + MAX_BURST)
        for i in range(row, end):
            key, value = encode_row(series, i)
            pending.append(await producer.send(topic, value, key=key))
        row = end
        while len(pending) > MAX_PENDING:
            await wait_oldest()
        collect()
        if on_progress is not None:
            on_progress(stream, acknowledged[stream])
        await asyncio.sleep(0)
    while pending:
        await wait_oldest()
    if on_progress is not None:
        on_progress(stream, acknowledged[stream])
