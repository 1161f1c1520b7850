"""The state of one market stream, and what each of its events does to it.

Per event: order check, features, delayed label, shift detectors on returns and
volatility. Per batch: the live policy's prequential error on the examples whose label
arrived (one vectorised numpy forward, test-then-train: each example is scored by the
policy live when its label arrived, which never trained on it) feeds the error channel.
Matured examples fill the current episode (cut at episode_size and at every shift) and,
after a shift, the new regime's adaptation set. Once that set is full, the stream's
``RegimeBook`` names its regime (a known one when it sits close to a stored prototype, else a
new one); until the next shift, matured examples update that regime's prototype.

Pure: no I/O, no torch; effects go to an ``Effects`` collector. Picklable, so the
service can snapshot it next to the committed offset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from adaptd.adapters.serving import NumpyPolicy
from adaptd.replay.episode import Episode

from ..config.settings import Settings
from .detection import Shift, ShiftDetector
from .effects import AdaptationRequest, Effects, ShiftEvent
from .features import FeatureExtractor
from .labels import DelayedLabeler, Example
from .regimes import RegimeBook, embed
from .schema import MarketEvent, Reason, Rejection


class _ShiftMark(NamedTuple):
    """A shift from the market channels, queued with the examples of its batch."""

    shift: Shift
    offset: int
    ts_ms: int


@dataclass(frozen=True)
class StreamConfig:
    """The settings one stream needs, resolved once per partition."""

    settings: Settings
    feature_names: tuple[str, ...]
    # Read per event or per example: plain attributes, not three lookups into the settings.
    max_out_of_order_ms: int = field(init=False)
    episode_size: int = field(init=False)
    shots: int = field(init=False)
    query_size: int = field(init=False)
    regime_novelty: float = field(init=False)
    max_regimes: int = field(init=False)
    regime_warm_start: bool = field(init=False)
    regime_columns: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        object.__setattr__(self, "max_out_of_order_ms", s.features.max_out_of_order_ms)
        object.__setattr__(self, "episode_size", s.replay.episode_size)
        object.__setattr__(self, "shots", s.adaptation.shots)
        object.__setattr__(self, "query_size", s.adaptation.query_size)
        object.__setattr__(self, "regime_novelty", s.regimes.novelty)
        object.__setattr__(self, "max_regimes", s.regimes.max_regimes)
        object.__setattr__(self, "regime_warm_start", s.regimes.warm_start)
        excluded = set(s.regimes.exclude_features)
        columns = tuple(i for i, n in enumerate(self.feature_names) if n not in excluded)
        object.__setattr__(self, "regime_columns", columns)


class StreamState:
    """Everything the daemon knows about one stream."""

    __slots__ = (
        "_collect",
        "_collect_shift",
        "_episode",
        "_fired",
        "_matured",
        "_regime_rows",
        "config",
        "detector",
        "features",
        "index",
        "labeler",
        "max_ts_ms",
        "partition",
        "pending",
        "policy",
        "policy_version",
        "policy_weights",
        "preq",
        "queued",
        "regime",
        "regimes",
        "segment",
        "stream",
        "topic",
    )

    def __init__(self, stream: str, topic: str, partition: int, config: StreamConfig) -> None:
        s = config.settings
        self.stream = stream
        self.topic = topic
        self.partition = partition
        self.config = config
        self.features = FeatureExtractor(s.features)
        self.labeler = DelayedLabeler(s.features.label_horizon, s.features.label_clip)
        self.detector = ShiftDetector(s.detection, s.detection.scale_halflife)
        self.index = 0
        self.max_ts_ms = -(2**62)
        self.segment = 0
        """Shifts seen so far."""
        self.regime = 0
        """Regime id of the current segment (0 for the first; see ``RegimeBook``)."""
        self.regimes = RegimeBook(config.regime_novelty, config.max_regimes)
        self._regime_rows: list[Example] = []
        self._episode: list[Example] = []
        # In event order: (example, offset and time of the event its label arrived with),
        # and shifts from the market channels.
        self._matured: list[tuple[Example, int, int] | _ShiftMark] = []
        self._collect: list[Example] = []
        self._collect_shift: ShiftEvent | None = None
        self._fired: dict[tuple[str, str], int] = {}
        self.pending: AdaptationRequest | None = None
        self.queued: AdaptationRequest | None = None
        self.policy_version = 0
        self.policy_weights: dict[str, np.ndarray] | None = None
        self.policy: NumpyPolicy | None = None
        # Prequential sums of squared error (live policy, the meta-learned initialisation
        # without adaptation, a zero forecast) and the count, for reports.
        self.preq = [0.0, 0.0, 0.0, 0]

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
        x = feats.update(ev.price, ev.bid, ev.ask, ev.volume)
        index = self.index
        self.index = index + 1
        example = self.labeler.push(index, feats.log_price, x, feats.vol, offset, ev.ts_ms)
        if example is not None:
            self._matured.append((example, offset, ev.ts_ms))
        if feats.count > 1:
            shift = self.detector.update(index, feats.ret, feats.vol)
            if shift is not None:
                # Acted on in finish_batch, in event order with the examples, so episodes
                # and adaptation sets do not depend on where batches were cut.
                self._matured.append(_ShiftMark(shift, offset, ev.ts_ms))
        return None

    # -- per batch ---------------------------------------------------------------------
    def finish_batch(self, default_policy: NumpyPolicy | None, out: Effects) -> None:
        """Score the examples whose labels arrived, feed the error channel, and file them."""
        if self._matured:
            self._score_and_file(default_policy, out)
        counts = self.detector.firing_counts
        if counts != self._fired:
            for pair, n in counts.items():
                delta = n - self._fired.get(pair, 0)
                if delta > 0:
                    out.firings[pair] = out.firings.get(pair, 0) + delta
            self._fired = dict(counts)

    def _score_and_file(self, default_policy: NumpyPolicy | None, out: Effects) -> None:
        items = self._matured
        self._matured = []
        examples = [item[0] for item in items if type(item) is tuple]
        out.examples += len(examples)
        errors = self._score(examples, default_policy) if examples else None
        horizon = self.labeler.horizon
        i = 0
        for item in items:
            if type(item) is _ShiftMark:
                self._on_shift(item.shift, item.offset, item.ts_ms, out)
                continue
            example, offset, ts_ms = item
            if errors is not None:
                # The error is known at the event the label arrived with, so that is where
                # a shift on this channel is detected (not at the example's own event).
                shift = self.detector.update_error(example.index + horizon, errors[i])
                if shift is not None:
                    self._on_shift(shift, offset, ts_ms, out)
            i += 1
            self._file(example, out)
        self._learn_regime()

    def _score(
        self, examples: list[Example], default_policy: NumpyPolicy | None
    ) -> list[float] | None:
        """Squared errors of the live policy on examples whose labels just arrived (one
        vectorised forward), and the prequential sums for reports."""
        policy = self.policy or default_policy
        if policy is None:
            return None
        x = np.array([e.x for e in examples], dtype=np.float32)
        y = np.fromiter((e.y for e in examples), dtype=np.float32, count=len(examples))
        err = (policy.predict(x) - y) ** 2
        sse = float(err.sum())
        preq = self.preq
        preq[0] += sse
        if self.policy is not None and default_policy is not None:
            sse = float(((default_policy.predict(x) - y) ** 2).sum())
        preq[1] += sse
        preq[2] += float((y * y).sum())
        preq[3] += len(examples)
        return err.tolist()

    def _file(self, example: Example, out: Effects) -> None:
        episode = self._episode
        episode.append(example)
        if len(episode) >= self.config.episode_size:
            self._cut_episode(out)
        shift = self._collect_shift
        if shift is None:
            self._regime_rows.append(example)
        elif example.index >= shift.shift.first_index:
            self._collect.append(example)
            if len(self._collect) >= self.config.shots:
                self._request(shift, out)

    def _learn_regime(self) -> None:
        """Merge the current regime's newly matured examples into its prototype."""
        rows = self._regime_rows
        if rows:
            self._regime_rows = []
            x = np.array([e.x for e in rows], dtype=np.float64)
            y = np.fromiter((e.y for e in rows), dtype=np.float64, count=len(rows))
            self.regimes.add(self.regime, embed(x, y, self.config.regime_columns))

    def _on_shift(self, shift: Shift, offset: int, ts_ms: int, out: Effects) -> None:
        self._learn_regime()
        self._cut_episode(out)
        self.segment += 1
        event = ShiftEvent(
            id=f"{self.stream}@{self.topic}:{self.partition}:{offset}",
            stream=self.stream,
            shift=shift,
            segment=self.segment,
            topic=self.topic,
            partition=self.partition,
            offset=offset,
            ts_ms=ts_ms,
            wall_time=time.time(),
        )
        out.shifts.append(event)
        # A newer shift supersedes a collection that has not filled yet.
        self._collect_shift = event
        self._collect = []

    def _cut_episode(self, out: Effects) -> None:
        episode = self._episode
        if episode:  # even a single example: every labelled example is stored once
            out.episodes.append(
                Episode.from_arrays(
                    stream=self.stream,
                    segment=self.segment,
                    regime=self.regime,
                    topic=self.topic,
                    partition=self.partition,
                    offsets=[e.offset for e in episode],
                    ts_ms=[e.ts_ms for e in episode],
                    x=np.array([e.x for e in episode], dtype=np.float32),
                    y=np.array([e.y for e in episode], dtype=np.float32),
                    feature_names=self.config.feature_names,
                )
            )
        self._episode = []

    def _request(self, shift: ShiftEvent, out: Effects) -> None:
        examples = self._collect
        self._collect = []
        self._collect_shift = None
        q = self.config.query_size
        x = np.array([e.x for e in examples], dtype=np.float32)
        y = np.array([e.y for e in examples], dtype=np.float32)
        z = embed(x, y, self.config.regime_columns)
        match = self.regimes.classify(z)
        self.regimes.add(match.regime_id, z)
        # The episode open since the shift holds these examples (shots < episode_size): it
        # will be stored under the regime they were just given, so the replay buffer keeps
        # the new regime's examples with its id.
        self.regime = match.regime_id
        out.regimes.append((self.stream, match))
        start = (
            self.regimes.policy(match.regime_id)
            if match.known and self.config.regime_warm_start
            else None
        )
        request = AdaptationRequest(
            id=shift.id,
            stream=self.stream,
            shift=shift,
            support_x=x[:-q],
            support_y=y[:-q],
            query_x=x[-q:],
            query_y=y[-q:],
            parent_version=self.policy_version,
            parent_weights=self.policy_weights,
            first_offset=examples[0].offset,
            last_offset=examples[-1].offset,
            ready_wall_time=time.time(),
            regime=match,
            start_weights=start,
        )
        # One adaptation in flight per stream; a newer request replaces a waiting one.
        if self.pending is None:
            self.pending = request
            out.requests.append(request)
        else:
            self.queued = request

    # -- results -----------------------------------------------------------------------
    def adopt(
        self,
        version: int,
        weights: dict[str, np.ndarray],
        activation: str,
        regime: int | None = None,
    ) -> None:
        """Make a published policy the stream's live one (and its regime's latest policy)."""
        self.policy_version = version
        self.policy_weights = weights
        self.policy = NumpyPolicy.from_params(weights, activation=activation)
        if regime is not None:
            self.regimes.remember_policy(regime, weights)

    def complete(self, request_id: str) -> AdaptationRequest | None:
        """Mark the in-flight request done; returns the queued one to submit next, if any."""
        if self.pending is None or self.pending.id != request_id:
            return None
        self.pending, self.queued = self.queued, None
        if self.pending is not None:
            # Its gate must compare against whatever policy is live now.
            self.pending.parent_version = self.policy_version
            self.pending.parent_weights = self.policy_weights
        return self.pending

    # -- snapshots ---------------------------------------------------------------------
    def __getstate__(self) -> dict[str, object]:
        # The config is shared by every stream of a partition and the numpy model is
        # derived from the weights: neither goes into the snapshot.
        skip = ("config", "policy")
        return {k: getattr(self, k) for k in self.__slots__ if k not in skip}

    def __setstate__(self, state: dict[str, object]) -> None:
        if "segment" not in state:  # a snapshot from before regime ids: regime counted shifts
            state = {**state, "segment": state.get("regime", 0), "regime": 0}
        state.setdefault("_regime_rows", [])
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self.policy = None

    def attach(self, config: StreamConfig, activation: str) -> None:
        """Reconnect a restored stream to its config and rebuild its live model."""
        self.config = config
        if not hasattr(self, "regimes"):
            self.regimes = RegimeBook(config.regime_novelty, config.max_regimes)
        if self.policy_weights is not None:
            self.policy = NumpyPolicy.from_params(self.policy_weights, activation=activation)

    @property
    def prequential_mse(self) -> tuple[float, float, float, int]:
        """(live policy, unadapted initialisation, zero forecast) MSE and examples scored."""
        live, init, zero, n = self.preq
        if not n:
            return float("nan"), float("nan"), float("nan"), 0
        return live / n, init / n, zero / n, int(n)
