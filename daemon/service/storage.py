"""Storing what a batch asks for: dead letters and shifts acknowledged by Kafka, episodes in
each task's reservoir (or held out to measure retention), before any offset behind them is
committed.

Batches are stored in order, one at a time: storing one overlaps with fetching and processing
the next, and ``settle`` (which every commit awaits) returns once everything processed so far
is stored. Storing retries with backoff until it succeeds: an outage is backpressure, never a
skipped offset.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.errors import ProducerClosed

from adaptd.replay.episode import Episode

from ..core.effects import Effects
from ..core.records import shift_message
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.outputs import Outputs, OutRecord, record_size
from ..io.retry import retrying
from .cancelling import cancel_all

log = get_logger("adaptd.storage")

__all__ = ["EffectStore", "EpisodeSink"]


class Replay(Protocol):
    """A task's reservoir (``adaptd.replay.ReservoirBuffer``)."""

    async def add_many(self, episodes: Sequence[Episode]) -> list[Any]: ...


class HeldOut(Protocol):
    """A task's held-out store (``adaptd.replay.HoldoutStore``)."""

    async def offer_many(self, episodes: Sequence[Episode]) -> list[bool]: ...


@dataclass(frozen=True)
class EpisodeSink:
    """Where one task's episodes go: the held-out store first (if any), then the reservoir."""

    reservoir: Replay
    holdout: HeldOut | None = None


class EffectStore:
    """Stores batches' effects in order and says when all are stored."""

    def __init__(
        self,
        outputs: Outputs,
        sinks: Mapping[str, EpisodeSink],
        *,
        shift_topic: str,
        deadletter_topic: str,
        metrics: Metrics,
    ) -> None:
        self.outputs = outputs
        self.sinks = sinks
        self.shift_topic = shift_topic
        self.deadletter_topic = deadletter_topic
        self.metrics = metrics
        self._storing: asyncio.Task[None] | None = None

    async def settle(self) -> None:
        """Return once the effects of every batch handed over are stored."""
        if self._storing is not None:
            await self._storing

    async def abort(self) -> None:
        """Stop storing (at a shutdown that cannot wait any longer): what was not stored is
        not committed either, and is processed again after the restart."""
        if self._storing is not None and not self._storing.done():
            await cancel_all([self._storing], tries=5)

    async def submit(self, out: Effects, started: float) -> None:
        """Start storing a batch's effects, after the previous batch's are stored."""
        await self.settle()
        self._storing = asyncio.create_task(self._store(out, started))

    async def _store(self, out: Effects, started: float) -> None:
        m = self.metrics
        records = [
            self.outputs.dead_letter_record(self.deadletter_topic, dl) for dl in out.dead_letters
        ]
        now_ms = int(time.time() * 1000)
        for ev in out.shifts:
            key, value = shift_message(ev, now_ms)
            records.append((self.shift_topic, key, value, None))

        dropped: dict[int, BaseException] = {}

        async def send() -> None:
            if records:
                await retrying(
                    lambda: self.outputs.send_all(records, dropped.setdefault),
                    what="send effects",
                    on_error=lambda _: m.send_errors.inc(),
                    fatal=(ProducerClosed,),
                )

        by_task: dict[str, list[Episode]] = {}
        for task, episode in out.episodes:
            by_task.setdefault(task, []).append(episode)
        await asyncio.gather(send(), *(self._keep(t, eps) for t, eps in by_task.items()))
        for i, error in sorted(dropped.items()):
            self._dropped(out, records[i], i, error)
        m.processing_latency.observe(time.perf_counter() - started)
        self._report(out)

    def _dropped(self, out: Effects, record: OutRecord, i: int, error: BaseException) -> None:
        """A record refused for good: counted and logged with where it came from; the
        offsets behind it are committed all the same (retrying could never store it)."""
        topic = record[0]
        self.metrics.outputs_dropped.labels(topic=topic, error=type(error).__name__).inc()
        n = len(out.dead_letters)
        source = out.dead_letters[i] if i < n else out.shifts[i - n]
        log.error(
            "output dropped: the brokers refused it for good",
            topic=topic,
            bytes=record_size(record),
            error=repr(error),
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
        )

    async def _keep(self, task: str, episodes: list[Episode]) -> None:
        """Offer the episodes to the held-out store first; the ones it keeps never reach the
        reservoir, so meta-training never sees them."""
        m = self.metrics
        sink = self.sinks[task]
        train = episodes
        holdout = sink.holdout
        if holdout is not None:
            held = await retrying(
                lambda: holdout.offer_many(episodes),
                what="hold out episodes",
                on_error=lambda _: m.redis_errors.inc(),
            )
            train = [ep for ep, h in zip(episodes, held, strict=True) if not h]
            if len(train) < len(episodes):
                m.replay_inserts.labels(result="held_out").inc(len(episodes) - len(train))
        if train:
            results = await retrying(
                lambda: sink.reservoir.add_many(train),
                what="store episodes",
                on_error=lambda _: m.redis_errors.inc(),
            )
            for result in results:
                m.replay_inserts.labels(result=str(result)).inc()

    def _report(self, out: Effects) -> None:
        m = self.metrics
        for stream, task, match in out.regimes:
            m.regimes.labels(outcome="known" if match.known else "new").inc()
            log.info(
                "regime classified",
                stream=stream,
                task=task,
                regime=match.regime_id,
                known=match.known,
                ratio=round(match.ratio, 3) if math.isfinite(match.ratio) else None,
                nearest=match.nearest,
            )
        for dl in out.dead_letters:
            m.dead_letters.labels(reason=str(dl.reason)).inc()
            log.debug(
                "dead letter",
                reason=str(dl.reason),
                detail=dl.detail,
                partition=dl.partition,
                offset=dl.offset,
            )
        for ev in out.shifts:
            for trigger in ev.shift.triggers[:1]:
                detector, _, channel = trigger.partition(":")
                m.shifts.labels(detector=detector, channel=channel).inc()
                delay = ev.shift.index - ev.shift.change_index
                m.detection_delay.labels(detector=detector).observe(delay)
            log.info(
                "shift detected",
                stream=ev.stream,
                segment=ev.segment,
                triggers=list(ev.shift.triggers),
                offset=ev.offset,
                partition=ev.partition,
                event_ts_ms=ev.ts_ms,
            )
