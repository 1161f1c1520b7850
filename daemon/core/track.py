"""One policy task on one stream: its labels, scores, episodes, regimes, adaptation requests and
live policy.

Per event the track's labeler holds the example formed now (of the task's features) and returns
the one whose label just matured (the stream calls it, and files the example in event order
with the shifts). Per batch the matured
examples are scored prequentially in one vectorised forward per model (:mod:`.prequential`),
then filed one by one: into the current episode (:mod:`.episodes`), and into the regime's
examples, or after a shift into the adaptation set (:mod:`.collect`). A full adaptation set is
classified into a regime (:mod:`.regimes`) and becomes an :class:`~.effects.AdaptationRequest`,
in flight or queued behind the pending one (:mod:`.live`).

Pure: no I/O, no torch. Picklable: it lives in the stream's snapshot, without its config.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from adaptd.adapters.serving import NumpyPolicy

from .collect import AdaptationSet
from .effects import AdaptationRequest, Effects, Published, Retired, ShiftEvent
from .episodes import episode_of
from .labels import DelayedLabeler, Example
from .live import PolicySlot
from .prequential import Prequential
from .regimes import RegimeBook, RegimeTracker
from .tasks.protocol import PolicyTask, model_id, qualified
from .validation import (
    DEFAULT_VALIDATION,
    Retirement,
    ValidationParams,
    Validator,
    constant_weights,
)

__all__ = ["TaskTrack", "TrackConfig"]


@dataclass(frozen=True)
class TrackConfig:
    """What a track needs, resolved once per partition from the stream's configuration.

    ``columns`` are the task's features as indices into the stream's feature vector (None:
    all, in order); ``regime_columns`` the embedding's features as indices into the task's.
    """

    task: PolicyTask
    feature_names: tuple[str, ...]
    columns: tuple[int, ...] | None
    regime_columns: tuple[int, ...]
    episode_size: int
    shots: int
    query_size: int
    novelty: float
    max_regimes: int
    warm_start: bool
    activation: str
    validation: ValidationParams = DEFAULT_VALIDATION
    name: str = field(init=False)
    skip: int = field(init=False)
    """Outputs the network adds from its last inputs (the task head's ``skip``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.task.name)
        object.__setattr__(self, "skip", self.task.head.skip)  # a task builds its head anew


class TaskTrack:
    """Everything the daemon knows about one task on one stream."""

    __slots__ = (
        "collector",
        "config",
        "episode",
        "labeler",
        "live",
        "model_id",
        "partition",
        "recent",
        "regimes",
        "scores",
        "stream",
        "task",
        "topic",
        "validator",
    )

    def __init__(self, stream: str, topic: str, partition: int, config: TrackConfig) -> None:
        task = config.task
        self.config = config
        self.stream = stream
        self.topic = topic
        self.partition = partition
        self.task = task.name
        self.model_id = model_id(stream, task)
        self.labeler = DelayedLabeler(task.label_rule())
        self.scores = Prequential(task.baseline())
        self.episode: list[Example] = []
        """The episode under construction (cut at ``episode_size`` and at every shift)."""
        self.collector = AdaptationSet()
        self.recent: deque[Example] = deque(maxlen=config.shots)
        """The latest examples filed: a shift located before its alarm takes its first
        examples from here, across episode cuts."""
        self.regimes = RegimeTracker(config.novelty, config.max_regimes)
        self.live = PolicySlot()
        self.validator = Validator(config.validation)

    # -- per batch ------------------------------------------------------------------------
    def score(
        self, examples: Sequence[Example], init: NumpyPolicy | None, out: Effects
    ) -> np.ndarray | None:
        """Prequential scores of matured examples; the live policy's per-example losses. A
        live policy that is now known to lose to the baseline is retired (:meth:`_retire`)."""
        x = np.array([e.x for e in examples], dtype=np.float32)
        y = np.fromiter((e.y for e in examples), dtype=np.float32, count=len(examples))
        live = self.live.model
        scored = self.scores.score_pair(self.config.task, x, y, live=live, init=init)
        if scored is None:
            return None
        if live is not None and self.validator.version:
            verdict = self.validator.update(*scored)
            if verdict is not None:
                self._retire(verdict, out)
        return scored[0]

    def _retire(self, verdict: Retirement, out: Effects) -> None:
        """Serve the baseline in the losing policy's place at once (scores and the error
        channel use it from the next batch), and hand it to the service to publish."""
        baseline = self.scores.baseline
        weights = self.live.weights
        constant = baseline.constant_output
        if weights is None or constant is None:
            return
        replacement = constant_weights(weights, constant)
        self.live.adopt(self.live.version, replacement, self.config.activation, self.config.skip)
        out.retirements.append(
            Retired(
                stream=self.stream,
                task=self.task,
                model=self.model_id,
                topic=self.topic,
                partition=self.partition,
                verdict=verdict,
                reason=verdict.reason(baseline.name),
                weights=replacement,
            )
        )

    def file(self, example: Example, segment: int, out: Effects) -> None:
        """File a scored example: into the episode, and into the regime's examples or, after
        a shift, the adaptation set."""
        self.recent.append(example)
        episode = self.episode
        episode.append(example)
        if len(episode) >= self.config.episode_size:
            self._cut(segment, out)
        collector = self.collector
        if collector.shift is None:  # per example: the attribute, not the property
            self.regimes.rows.append(example)
            return
        done = collector.offer(example, self.config.shots)
        if done is not None:
            self._request(*done, out)

    def learn_regime(self) -> None:
        """Merge the current regime's newly matured examples into its prototype."""
        self.regimes.learn(self.config.regime_columns)

    def on_shift(self, event: ShiftEvent, segment: int, out: Effects) -> None:
        """A confirmed shift: close the regime's examples and the episode (cut under the
        segment before the shift), and start collecting the new regime's adaptation set.

        Examples formed since the change began (the detector's estimated location, before
        the alarm) belong to the new regime: they leave the old regime's prototype and
        episode, and are the adaptation set's first examples."""
        begun = event.shift.change_index
        self.regimes.rows = [e for e in self.regimes.rows if e.index < begun]
        self.learn_regime()
        moved = [e for e in self.episode if e.index >= begun]
        self.episode = [e for e in self.episode if e.index < begun]
        self._cut(segment, out)
        self.collector.start(event)
        # Episodes already cut keep theirs: they are stored under the old regime.
        self.episode = moved
        for example in [e for e in self.recent if e.index >= begun]:
            done = self.collector.offer(example, self.config.shots)
            if done is not None:
                self._request(*done, out)

    def _cut(self, segment: int, out: Effects) -> None:
        rows = self.episode
        if rows:  # even a single example: every labelled example is stored once
            episode = episode_of(
                rows,
                stream=self.stream,
                topic=self.topic,
                partition=self.partition,
                segment=segment,
                regime=self.regimes.regime,
                feature_names=self.config.feature_names,
            )
            out.episodes.append((self.task, episode))
        self.episode = []

    def _request(self, shift: ShiftEvent, examples: list[Example], out: Effects) -> None:
        config = self.config
        q = config.query_size
        x = np.array([e.x for e in examples], dtype=np.float32)
        y = np.array([e.y for e in examples], dtype=np.float32)
        # The episode open since the shift holds these examples (shots < episode_size): it is
        # cut under the regime they are given here, so the replay buffer keeps the new
        # regime's examples with its id.
        match = self.regimes.classify(x, y, config.regime_columns)
        out.regimes.append((self.stream, self.task, match))
        start = (
            self.regimes.book.policy(match.regime_id) if match.known and config.warm_start else None
        )
        live = self.live
        request = AdaptationRequest(
            id=qualified(shift.id, config.task, "#"),
            stream=self.stream,
            shift=shift,
            support_x=x[:-q],
            support_y=y[:-q],
            query_x=x[-q:],
            query_y=y[-q:],
            parent_version=live.version,
            parent_weights=live.weights,
            first_offset=examples[0].offset,
            last_offset=examples[-1].offset,
            ready_wall_time=time.time(),
            regime=match,
            start_weights=start,
            task=self.task,
            model_id=self.model_id,
        )
        if live.submit(request):
            out.requests.append(request)

    # -- results --------------------------------------------------------------------------
    def adopt(
        self,
        version: int,
        weights: dict[str, np.ndarray],
        regime: int | None,
        *,
        validate: bool = True,
    ) -> None:
        """Make a published policy the live one (and its regime's latest policy); it is
        validated against the baseline from now on (not the baseline itself:
        ``validate=False``)."""
        self.live.adopt(version, weights, self.config.activation, self.config.skip)
        self.validator.watch(version if validate else 0)
        if regime is not None:
            self.regimes.book.remember_policy(regime, weights)

    def settle(
        self, request: AdaptationRequest, published: Published | None
    ) -> AdaptationRequest | None:
        """Complete the pending ``request``: ``published`` (version, weights) becomes the live
        policy (and its regime's) unless something newer is live. Returns the queued request,
        now pending, to submit next (None as well when ``request`` is not the pending one)."""
        if self.live.pending is not request:
            return None
        if published is not None and published.version > self.live.version:
            regime = request.regime.regime_id if request.regime is not None else None
            self.adopt(published.version, published.weights, regime)
        return self.complete(request.id)

    def adopt_baseline(self, weights: dict[str, np.ndarray], version: int) -> bool:
        """The baseline that replaced a retired policy, published as ``version``, becomes the
        live version, as any newer published version does (so the stream serves what
        subscribers hold last). It is not validated: it is what policies are validated
        against. False when something newer is live."""
        return self.catch_up(version, weights, validate=False)

    def catch_up(self, version: int, weights: dict[str, np.ndarray], *, validate: bool) -> bool:
        """A policy published for this model that the track does not know of (the daemon
        restarted after publishing it, before its snapshot) becomes the live one: it is what
        subscribers hold, so it is what the next policy must replace. A baseline published
        in place of a retired policy is not validated (``validate=False``). False when the
        live policy is as new."""
        if version <= self.live.version or not self.reads_as(weights):
            return False
        self.adopt(version, weights, None, validate=validate)
        return True

    def reads_as(self, weights: dict[str, np.ndarray]) -> bool:
        """Whether a policy's first layer takes this track's inputs (one published before
        the task's inputs changed, e.g. ``ensemble``, does not: it cannot be served)."""
        first = weights.get("layers.0.weight")
        return first is not None and first.shape[-1] == len(self.config.feature_names)

    def rebase(self, request: AdaptationRequest) -> AdaptationRequest | None:
        """The pending ``request`` again, with the live policy as its parent: it was adapted
        and gated against an older one than subscribers hold. None when it is not pending."""
        live = self.live
        if live.pending is not request:
            return None
        live.pending = replace(request, parent_version=live.version, parent_weights=live.weights)
        return live.pending

    def complete(self, request_id: str) -> AdaptationRequest | None:
        """Mark the in-flight request done; returns the queued one to submit next, if any."""
        return self.live.complete(request_id)

    # -- snapshots ------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # The config is shared by the partition's streams: it is attached again on restore.
        return {k: getattr(self, k) for k in self.__slots__ if k != "config"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        if "validator" not in state:  # snapshotted before continuous validation
            self.validator = Validator(ValidationParams())
        if "recent" not in state:  # snapshotted before shifts had a location
            self.recent = deque()

    def attach(self, config: TrackConfig) -> None:
        """Reconnect a restored track to its config and rebuild its live model."""
        self.config = config
        self.validator.params = config.validation
        self.recent = deque(self.recent, maxlen=config.shots)
        if self.regimes.book is None:  # restored from before regime ids
            self.regimes.book = RegimeBook(config.novelty, config.max_regimes)
        self.live.rebuild(config.activation, config.skip)
