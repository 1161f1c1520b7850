"""One input partition: its streams, in offset order, and its snapshot.

Records of a partition are processed strictly in order. Each record is decoded and
validated, routed to its stream by the payload's stream id (the Kafka key must agree),
and its effects are collected; bad records become dead letters and never stop the
partition. The whole partition state is stored (:mod:`.state_format`), so the service can
store it next to the offset it commits and a restart resumes exactly there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Protocol

from adaptd.adapters.serving import NumpyPolicy

from .detectors.confirm import Check, run_checks
from .effects import AdaptationRequest, DeadLetter, Effects, Published
from .schema import EventDecoder, MarketEvent, Rejection
from .stream import StreamConfig, StreamState
from .track import TaskTrack


class Record(Protocol):
    """The fields of aiokafka's ConsumerRecord that processing reads."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


class PartitionState:
    """Streams of one (topic, partition) and the next offset to process."""

    def __init__(
        self, topic: str, partition: int, config: StreamConfig, max_message_bytes: int = 65536
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.config = config
        self.decoder = EventDecoder(max_message_bytes)
        self.streams: dict[str, StreamState] = {}
        """Streams in memory, least recently used first."""
        self.evicted: dict[str, None] = {}
        """Streams whose state is in the partition's snapshot only, evicted longest ago
        first: restored on their next event (:meth:`missing`, :meth:`readmit`)."""
        self.next_offset: int | None = None
        self.dirty: set[str] = set()

    def stream(self, name: str) -> StreamState:
        state = self.streams.get(name)
        if state is None:
            state = self.streams[name] = StreamState(name, self.topic, self.partition, self.config)
        return state

    def process(
        self, records: Iterable[Record], defaults: Mapping[str, NumpyPolicy], out: Effects
    ) -> None:
        """Apply a batch of records in offset order; effects are appended to ``out``.
        ``defaults`` are the meta-learned initialisations by task.

        The same as :meth:`apply`, then the shifts' confirmations (:meth:`checks`) run here,
        then :meth:`finish`: the service runs the confirmations off its event loop instead.
        """
        touched = self.apply(records, out)
        run_checks(self.checks(touched))
        self.finish(touched, defaults, out)

    def apply(self, records: Iterable[Record], out: Effects) -> list[StreamState]:
        """The first half of :meth:`process`: every record to its stream; the streams
        touched, for :meth:`finish`."""
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
        if last is not None:
            self.next_offset = last + 1
        return list(touched.values())

    @staticmethod
    def checks(touched: Iterable[StreamState]) -> list[Check]:
        """The confirmations the touched streams' shifts wait for."""
        return [check for state in touched for check in state.checks()]

    def finish(
        self, touched: Iterable[StreamState], defaults: Mapping[str, NumpyPolicy], out: Effects
    ) -> None:
        """The second half of :meth:`process`: score, file and act on shifts."""
        streams = self.streams
        for state in touched:
            state.finish_batch(defaults, out)
            self.dirty.add(state.stream)
            # Once per batch, not per event: the most recently used go last.
            streams[state.stream] = streams.pop(state.stream)

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

    # -- adaptation requests ----------------------------------------------------------------
    def in_flight(self) -> list[AdaptationRequest]:
        """The pending adaptation request of every (stream, task) that has one."""
        return [
            t.live.pending
            for state in self.streams.values()
            for t in state.tracks
            if t.live.pending is not None
        ]

    def _track_of(self, request: AdaptationRequest) -> TaskTrack | None:
        state = self.streams.get(request.stream)
        if state is None:
            return None
        try:
            return state.track(request.task)
        except KeyError:
            return None

    def pending(self, request: AdaptationRequest) -> bool:
        """True when ``request`` is its (stream, task)'s pending request."""
        track = self._track_of(request)
        return track is not None and track.live.pending is request

    def settle(
        self, request: AdaptationRequest, published: Published | None
    ) -> AdaptationRequest | None:
        """Complete the pending ``request``; ``published`` (version, weights) becomes the
        task's live policy and its regime's latest. Returns the queued request, now pending,
        to submit next."""
        track = self._track_of(request)
        if track is None or track.live.pending is not request:
            return None
        self.dirty.add(request.stream)
        return track.settle(request, published)

    def rebase(
        self,
        request: AdaptationRequest,
        published: Published | None,
        *,
        validate: bool,
    ) -> AdaptationRequest | None:
        """``published``, a newer policy of the request's model than its parent (None: the
        live one is), goes live unless something as new is (:meth:`TaskTrack.catch_up`), and
        the pending ``request`` is returned with the live policy as its parent, to adapt
        again (None when it is not pending)."""
        track = self._track_of(request)
        if track is None or track.live.pending is not request:
            return None
        self.dirty.add(request.stream)
        if published is not None:
            track.catch_up(published.version, published.weights, validate=validate)
        return track.rebase(request)

    def live_version(self, request: AdaptationRequest) -> int:
        """The version the request's (stream, task) serves (0 when it is not here)."""
        track = self._track_of(request)
        return 0 if track is None else track.live.version

    def catch_up(self, stream: str, task: str, published: Published, *, validate: bool) -> bool:
        """``published`` goes live on ``stream``'s ``task`` if it is newer than its live
        policy (:meth:`TaskTrack.catch_up`); False when it is not, or the stream is gone."""
        state = self.streams.get(stream)
        if state is None or not state.track(task).catch_up(
            published.version, published.weights, validate=validate
        ):
            return False
        self.dirty.add(stream)
        return True

    def models(self) -> list[tuple[str, str, str, int]]:
        """(stream, task, model id, live version) of every track."""
        return [
            (state.stream, t.task, t.model_id, t.live.version)
            for state in self.streams.values()
            for t in state.tracks
        ]

    # -- bounded state ----------------------------------------------------------------------
    def missing(self, records: Iterable[Record]) -> list[str]:
        """The evicted streams a batch has events for (by record key, which a valid event's
        stream must equal), to restore before :meth:`apply`."""
        evicted = self.evicted
        if not evicted:
            return []
        floor = -1 if self.next_offset is None else self.next_offset
        names = {
            name
            for rec in records
            if rec.key is not None
            and rec.offset >= floor
            and (name := rec.key.decode("utf-8", "replace")) in evicted
        }
        return sorted(names)

    def readmit(self, names: Iterable[str], states: Mapping[str, StreamState]) -> list[str]:
        """Evicted streams come back with their ``states`` from the snapshot; a name without
        one, or with a state of other feature settings, starts again as a new stream would.
        Returns the names readmitted with their state."""
        back = []
        for name in names:
            self.evicted.pop(name, None)
            state = states.get(name)
            if state is None or state.features.names != self.config.feature_names:
                continue
            state.attach(self.config)
            self.streams[name] = state
            back.append(name)
        return back

    def evict(self, count: int) -> list[str]:
        """Evict up to ``count`` least recently used streams that are stored (not dirty) and
        have no adaptation in flight; returns their names. Their state stays in the
        snapshot."""
        out: list[str] = []
        if count <= 0:
            return out
        for name, state in self.streams.items():
            if name in self.dirty or any(t.live.pending is not None for t in state.tracks):
                continue
            out.append(name)
            if len(out) == count:
                break
        for name in out:
            del self.streams[name]
            self.evicted[name] = None
        return out

    def forget(self, max_stored: int) -> list[str]:
        """The evicted streams seen longest ago beyond ``max_stored`` streams in all: they
        leave the index, and the caller deletes their stored state."""
        over = len(self.streams) + len(self.evicted) - max_stored
        if over <= 0:
            return []
        names = list(itertools.islice(self.evicted, over))
        for name in names:
            del self.evicted[name]
        return names

    # -- snapshots --------------------------------------------------------------------------
    def restore(self, streams: dict[str, StreamState], next_offset: int | None) -> list[str]:
        """Adopt streams loaded from a snapshot. A stream whose features were made with other
        feature settings (``features.momentum_horizons`` or ``features.calendar`` changed) is
        not adopted: its vectors, episodes and policies have another width, so it warms up
        again from its next event. Returns the streams left out."""
        names = self.config.feature_names
        stale = [s for s, state in streams.items() if state.features.names != names]
        for s in stale:
            del streams[s]
        for state in streams.values():
            state.attach(self.config)
        self.streams = streams
        self.evicted = {}
        self.next_offset = next_offset
        self.dirty.clear()
        return stale
