"""One input partition: its streams, in offset order, and its snapshot.

Records of a partition are processed strictly in order. Each record is decoded and
validated, routed to its stream by the payload's stream id (the Kafka key must agree),
and its effects are collected; bad records become dead letters and never stop the
partition. The whole partition state pickles, so the service can store it next to the
offset it commits and a restart resumes exactly there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from adaptd.adapters.serving import NumpyPolicy

from .effects import DeadLetter, Effects
from .schema import EventDecoder, MarketEvent, Rejection
from .stream import StreamConfig, StreamState


class Record(Protocol):
    """The fields of aiokafka's ConsumerRecord that processing reads."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


class PartitionState:
    """Streams of one (topic, partition) and the next offset to process."""

    def __init__(
        self, topic: str, partition: int, config: StreamConfig, activation: str = "tanh"
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.config = config
        self.activation = activation
        self.decoder = EventDecoder(config.settings.kafka.max_message_bytes)
        self.streams: dict[str, StreamState] = {}
        self.next_offset: int | None = None
        self.dirty: set[str] = set()

    def stream(self, name: str) -> StreamState:
        state = self.streams.get(name)
        if state is None:
            state = self.streams[name] = StreamState(name, self.topic, self.partition, self.config)
        return state

    def process(
        self, records: Iterable[Record], default_policy: NumpyPolicy | None, out: Effects
    ) -> None:
        """Apply a batch of records in offset order; effects are appended to ``out``."""
        decode = self.decoder.decode
        touched: dict[str, StreamState] = {}
        last = None
        # Records below the restored position were already processed (a fetch that raced
        # the seek): skipping them keeps redelivery from touching the state twice.
        floor = -1 if self.next_offset is None else self.next_offset
        for rec in records:
            if rec.offset < floor:
                continue
            last = rec.offset
            result = decode(rec.value, rec.key)
            if isinstance(result, MarketEvent):
                state = touched.get(result.stream) or self.stream(result.stream)
                touched[result.stream] = state
                rejected = state.on_event(result, rec.offset, out)
                if rejected is None:
                    out.processed += 1
                    continue
                result = rejected
            self._dead_letter(rec, result, out)
        for state in touched.values():
            state.finish_batch(default_policy, out)
        self.dirty.update(touched)
        if last is not None:
            self.next_offset = last + 1

    def _dead_letter(self, rec: Record, why: Rejection, out: Effects) -> None:
        out.dead_letters.append(
            DeadLetter(
                reason=why.reason,
                detail=why.detail,
                topic=self.topic,
                partition=self.partition,
                offset=rec.offset,
                timestamp_ms=rec.timestamp,
                key=rec.key,
                value=rec.value,
            )
        )

    def restore(self, streams: dict[str, StreamState], next_offset: int | None) -> None:
        """Adopt streams loaded from a snapshot."""
        for state in streams.values():
            state.attach(self.config, self.activation)
        self.streams = streams
        self.next_offset = next_offset
        self.dirty.clear()
