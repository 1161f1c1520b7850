"""The state of one market stream, and what each of its events does to it.

Per event: order check, features, each task's delayed label, shift detectors on returns and
volatility. Per batch, in event order: each task's matured examples are scored prequentially
(:class:`~.track.TaskTrack`), the first task's live-policy errors feed the detectors' error
channel, and every shift (from the market channels or the error channel) reaches every task at
the event that revealed it, so episodes and adaptation sets do not depend on where batches were
cut.

Pure: no I/O, no torch; effects go to an ``Effects`` collector. Picklable, so the service can
snapshot it next to the committed offset (:mod:`.snapshot` reads snapshots of earlier layouts).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from adaptd.adapters.serving import NumpyPolicy

from .detection import ShiftDetector
from .detectors.confirm import Check
from .effects import Effects, ShiftEvent
from .extreme import ExtremeMove
from .feature_spec import FeatureParams, feature_names
from .features import FeatureExtractor
from .labels import Example
from .schema import MarketEvent, Reason, Rejection
from .shift import DetectionParams, Shift
from .snapshot import migrate_stream_state
from .tasks.protocol import PolicyTask, input_names
from .track import TaskTrack, TrackConfig
from .validation import DEFAULT_VALIDATION, ValidationParams

__all__ = ["RegimeParams", "StreamConfig", "StreamState"]


class RegimeParams(NamedTuple):
    """The regime classifier's settings (the ``regimes`` section)."""

    novelty: float
    max_regimes: int
    warm_start: bool
    exclude_features: tuple[str, ...]


class _ShiftMark(NamedTuple):
    """A shift from the market channels, queued with the examples of its batch (and its
    confirmation, to be run before it is acted on)."""

    shift: Shift
    offset: int
    ts_ms: int
    check: Check | None = None


@dataclass(frozen=True)
class StreamConfig:
    """What every stream of a partition needs, resolved once (see
    ``adaptd.daemon.service.configs`` for how the Settings map to it)."""

    features: FeatureParams
    detection: DetectionParams
    scale_halflife: float
    tasks: tuple[PolicyTask, ...]
    regimes: RegimeParams
    episode_size: int
    shots: int
    query_size: int
    max_out_of_order_ms: int
    activation: str = "tanh"
    validation: ValidationParams = DEFAULT_VALIDATION
    feature_names: tuple[str, ...] = field(init=False)
    tracks: tuple[TrackConfig, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = feature_names(self.features)
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "tracks", tuple(self._track(t, names) for t in self.tasks))

    def _track(self, task: PolicyTask, names: tuple[str, ...]) -> TrackConfig:
        if task.features is None:
            columns, own = None, names
        else:
            unknown = [n for n in task.features if n not in names]
            if unknown:
                raise ValueError(f"task {task.name!r} reads unknown features {unknown}")
            columns, own = tuple(names.index(n) for n in task.features), task.features
        excluded = set(self.regimes.exclude_features)
        return TrackConfig(
            task=task,
            # The rule's own inputs follow the features; a regime is told by the features.
            feature_names=input_names(task, own),
            columns=columns,
            regime_columns=tuple(i for i, n in enumerate(own) if n not in excluded),
            episode_size=self.episode_size,
            shots=self.shots,
            query_size=self.query_size,
            novelty=self.regimes.novelty,
            max_regimes=self.regimes.max_regimes,
            warm_start=self.regimes.warm_start,
            activation=self.activation,
            validation=self.validation,
        )


class StreamState:
    """Everything the daemon knows about one stream: shared features and detectors, and one
    :class:`~.track.TaskTrack` per policy task (the first task's errors feed the detectors)."""

    __slots__ = (
        "_fired",
        "_labelers",
        "_matured",
        "_one",
        "config",
        "detector",
        "features",
        "index",
        "max_ts_ms",
        "partition",
        "segment",
        "stream",
        "topic",
        "tracks",
    )

    def __init__(self, stream: str, topic: str, partition: int, config: StreamConfig) -> None:
        self.stream = stream
        self.topic = topic
        self.partition = partition
        self.config = config
        self.features = FeatureExtractor(config.features)
        self.detector = ShiftDetector(config.detection.for_stream(stream), config.scale_halflife)
        self.index = 0
        self.max_ts_ms = -(2**62)
        self.segment = 0
        """Shifts seen so far."""
        self.tracks = tuple(TaskTrack(stream, topic, partition, c) for c in config.tracks)
        self._bind()
        # In event order: (track, example, offset and time of the event its label arrived
        # with), and shifts from the market channels.
        self._matured: list[tuple[TaskTrack, Example, int, int] | _ShiftMark] = []
        self._fired: dict[tuple[str, str], int] = {}

    def _bind(self) -> None:
        # Per event and task, one call: the labeler's push, bound once (not pickled).
        self._labelers = tuple((t, t.labeler.push, t.config.columns) for t in self.tracks)
        one = self._labelers[0] if len(self._labelers) == 1 else None
        self._one = None if one is None or one[2] is not None else one[1]

    def track(self, task: str) -> TaskTrack:
        """The track of a task, by name (KeyError if the stream does not run it)."""
        for track in self.tracks:
            if track.task == task:
                return track
        raise KeyError(task)

    # -- per event ---------------------------------------------------------------------
    def on_event(self, ev: MarketEvent, offset: int, out: Effects) -> Rejection | None:
        """Process one decoded event; a rejection means it must go to the dead letters."""
        if ev.ts_ms < self.max_ts_ms - self.config.max_out_of_order_ms:
            return Rejection(
                Reason.OUT_OF_ORDER,
                f"event time {ev.ts_ms} is {self.max_ts_ms - ev.ts_ms} ms before the "
                f"stream's newest {self.max_ts_ms} (tolerance "
                f"{self.config.max_out_of_order_ms} ms)",
            )
        if ev.ts_ms > self.max_ts_ms:
            self.max_ts_ms = ev.ts_ms
        feats = self.features
        x = feats.update(ev.price, ev.bid, ev.ask, ev.volume, ev.ts_ms)
        index = self.index
        self.index = index + 1
        matured = self._matured
        one = self._one
        if one is not None:  # the common case: one task on all the features
            example = one(index, feats, x, offset, ev.ts_ms)
            if example is not None:
                matured.append((self.tracks[0], example, offset, ev.ts_ms))
        else:
            for track, push, columns in self._labelers:
                own = x if columns is None or x is None else tuple([x[i] for i in columns])
                example = push(index, feats, own, offset, ev.ts_ms)
                if example is not None:
                    matured.append((track, example, offset, ev.ts_ms))
        if feats.count > 1:
            shift = self.detector.update(index, feats.ret, feats.vol)
            if shift is not None:
                # Acted on in finish_batch, in event order with the examples.
                check = None
                window = self.detector.take_window()
                confirmation = self.detector.confirmation
                if window is not None and confirmation is not None:
                    check = Check(confirmation, window[0], window[1], shift.location)
                matured.append(_ShiftMark(shift, offset, ev.ts_ms, check))
        return None

    def checks(self) -> list[Check]:
        """The confirmations this batch's shifts wait for (run them before
        :meth:`finish_batch`, anywhere; it runs those left itself)."""
        return [
            item.check
            for item in self._matured
            if type(item) is _ShiftMark and item.check is not None and not item.check.done
        ]

    # -- per batch ---------------------------------------------------------------------
    def finish_batch(self, defaults: Mapping[str, NumpyPolicy], out: Effects) -> None:
        """Score the examples whose labels arrived, feed the error channel, and file them.
        ``defaults`` are the meta-learned initialisations by task (they serve a track that
        has no live policy yet)."""
        if self._matured:
            self._score_and_file(defaults, out)
        counts = self.detector.firing_counts
        if counts != self._fired:
            for pair, n in counts.items():
                delta = n - self._fired.get(pair, 0)
                if delta > 0:
                    out.firings[pair] = out.firings.get(pair, 0) + delta
            self._fired = dict(counts)

    def _score_and_file(self, defaults: Mapping[str, NumpyPolicy], out: Effects) -> None:
        items = self._matured
        self._matured = []
        first = self.tracks[0]
        by_track: dict[TaskTrack, list[Example]] = {}
        if len(self.tracks) == 1:
            by_track[first] = [item[1] for item in items if type(item) is tuple]
        else:
            for item in items:
                if type(item) is tuple:
                    by_track.setdefault(item[0], []).append(item[1])
        errors = None
        for track, examples in by_track.items():
            if not examples:
                continue
            out.examples += len(examples)
            losses = track.score(examples, defaults.get(track.task), out)
            if track is first and losses is not None:
                errors = losses.tolist()
        horizon = first.labeler.horizon
        i = 0
        for item in items:
            if type(item) is _ShiftMark:
                shift = item.shift if item.check is None else _confirmed(item, out)
                if shift is not None:
                    self._on_shift(shift, item.offset, item.ts_ms, out)
                continue
            track, example, offset, ts_ms = item
            if track is first:
                if errors is not None:
                    # The error is known at the event the label arrived with, so that is
                    # where a shift on this channel is detected (not at the example's own).
                    shift = self.detector.update_error(example.index + horizon, errors[i])
                    if shift is not None:
                        self._on_shift(shift, offset, ts_ms, out)
                i += 1
            track.file(example, self.segment, out)
        for track in self.tracks:
            track.learn_regime()

    def _on_shift(self, shift: Shift, offset: int, ts_ms: int, out: Effects) -> None:
        event = ShiftEvent(
            id=f"{self.stream}@{self.topic}:{self.partition}:{offset}",
            stream=self.stream,
            shift=shift,
            segment=self.segment + 1,
            topic=self.topic,
            partition=self.partition,
            offset=offset,
            ts_ms=ts_ms,
            wall_time=time.time(),
        )
        for track in self.tracks:
            track.on_shift(event, self.segment, out)
        self.segment += 1
        out.shifts.append(event)

    # -- snapshots ---------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # The config is shared by every stream of a partition, the bound labelers derived:
        # neither is in the snapshot.
        derived = ("config", "_labelers", "_one")
        return {k: getattr(self, k) for k in self.__slots__ if k not in derived}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in migrate_stream_state(state).items():
            object.__setattr__(self, key, value)

    def attach(self, config: StreamConfig) -> None:
        """Reconnect a restored stream to its config: tracks of tasks no longer configured
        are dropped, newly configured tasks (and tasks whose rules append other inputs now,
        or compute them otherwise) start fresh tracks, live models are rebuilt."""
        self.config = config
        # The extreme-move threshold holds no state, so today's setting applies (the
        # detectors keep the parameters their state was learnt with).
        detection = config.detection.for_stream(self.stream)
        self.detector.extreme = ExtremeMove(detection.extreme_z)
        self.detector.confirm_with(detection)
        kept = {t.task: t for t in self.tracks}
        tracks = []
        for c in config.tracks:
            track = kept.get(c.name)
            # A track whose rule appends other inputs than the task's now (the strategy
            # task's `ensemble` changed) has examples and policies of another width; one
            # whose Hedge runs with other parameters would serve inputs that the messages,
            # which define Hedge from today's settings, do not describe.
            if (
                track is None
                or _inputs_of(track.labeler.rule) != _inputs_of(c.task)
                or not _same_hedge(track.labeler.rule, c.task)
            ):
                track = TaskTrack(self.stream, self.topic, self.partition, c)
            else:
                track.attach(c)
            tracks.append(track)
        self.tracks = tuple(tracks)
        self._bind()
        # Matured examples of dropped tracks are not filed; the others keep their order.
        self._matured = [
            item for item in self._matured if type(item) is not tuple or item[0] in tracks
        ]


def _inputs_of(obj: Any) -> tuple[str, ...]:
    return tuple(getattr(obj, "inputs", ()))


def _same_hedge(rule: Any, task: Any) -> bool:
    """Whether a restored label rule's Hedge (the strategy task's, if any) runs with the
    parameters the task gives it now. Only a rule with a Hedge builds the task's rule to
    compare: with the same inputs, the task's rule then has one too."""
    hedge = getattr(rule, "hedge", None)
    return hedge is None or hedge.parameters == task.label_rule().hedge.parameters


def _confirmed(mark: _ShiftMark, out: Effects) -> Shift | None:
    """The shift as its confirmation left it: relocated, or None when retracted."""
    check = mark.check
    assert check is not None
    check.run()  # nothing to do when it ran off the event loop
    shift = mark.shift
    if check.result is None:
        outcome = "retracted"
    elif check.result == shift.location:
        outcome = "confirmed"
    else:
        outcome = "relocated"
    out.confirmations[outcome] = out.confirmations.get(outcome, 0) + 1
    return None if check.result is None else shift._replace(location=check.result)
