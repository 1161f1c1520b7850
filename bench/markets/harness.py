"""The daemon's own core and learner, driven in-process over one price series, event by event.

No broker and no Redis: :class:`~adaptd.daemon.core.stream.StreamState` takes each event as
the daemon's partition does, adaptation requests run synchronously on the same
:class:`~adaptd.daemon.learner.learners.TaskLearners` the learner process serves (so a policy
goes live as soon as its shots are labelled, where the daemon would take a few milliseconds
more), and episodes are meta-trained from an in-memory reservoir (Algorithm R) every
``meta_every`` events, as the daemon's meta-trainer does from Redis every
``adaptation.meta_interval_s`` seconds.

What the daemon publishes is what is scored here, but at the honest moment: for each event
t the harness records what every task's live policy (the meta-learned initialisation before
any is live) forecasts from that event's features, *when the event arrives*, and the
initialisation's forecast beside it. Scoring those against labels made later is a
test-then-train evaluation with no look-ahead, whatever the label horizon.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adaptd.adapters.serving import NumpyPolicy
from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import Settings
from adaptd.daemon.core.effects import Effects, Published
from adaptd.daemon.core.schema import MarketEvent
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.core.track import TaskTrack
from adaptd.daemon.learner.learners import TaskLearners
from adaptd.daemon.service.configs import stream_config, task_models, tasks_of
from adaptd.daemon.service.outcomes import adapt_job
from adaptd.replay.episode import Episode

__all__ = ["Replay", "TaskTrace", "replay_series"]

ACTIVATION = "tanh"


@dataclass
class TaskTrace:
    """One task's forecasts over a series: at each event, the raw output of the live policy
    (the baseline's while none is live) and the initialisation's (NaN during warm-up), and
    what became of its adaptations and validations. A task with one output per class keeps
    one row of outputs per event."""

    live: np.ndarray
    init: np.ndarray
    positions: np.ndarray | None = None
    """For a task whose label rule runs strategies (the strategy task): their positions from
    each event, ``(n, strategies)``."""
    reference: np.ndarray | None = None
    """For a task whose label rule keeps a reference forecast (the risk task's ``s2_t``):
    its value at each event."""
    adaptations: int = 0
    published: int = 0
    retired: int = 0
    publish_rows: list[int] = field(default_factory=list)
    outcomes: list[tuple[float, float, float, float]] = field(default_factory=list)
    """Per adaptation: query loss before, after, from scratch, and the seconds it took."""


@dataclass
class Replay:
    """A replayed series: the stream's slow volatility, fast EW variance and regime per
    event, and a trace per task."""

    vol: np.ndarray
    fast_var: np.ndarray
    regime: np.ndarray
    shifts: list[int]
    tasks: dict[str, TaskTrace]
    meta_updates: int
    meta_errors: int = 0
    """Meta-updates the learner undid because they made the initialisation non-finite."""


def _reservoir_add(
    items: list[Episode], episode: Episode, seen: int, capacity: int, rng: random.Random
) -> None:
    if len(items) < capacity:
        items.append(episode)
    else:
        j = rng.randrange(seen)
        if j < capacity:
            items[j] = episode


def replay_series(
    series: MarketSeries,
    settings: Settings,
    *,
    meta_every: int = 250,
    meta_until: int | None = None,
    batch: int = 50,
    seed: int = 0,
) -> Replay:
    """Replay ``series`` through the stream core and the learners of ``settings``' tasks.

    Meta-training runs every ``meta_every`` events on the episodes completed so far, and stops
    at event ``meta_until`` (the end of the earlier part; None: never); adaptation after
    shifts goes on to the end, as in the daemon.
    """
    tasks = tasks_of(settings)
    models = task_models(settings, tasks)
    learners = TaskLearners(settings.adaptation, [m.spec for m in models], settings.continual)
    learners.warm_up()
    state = StreamState(series.stream, "bench", 0, stream_config(settings, tasks))
    n = len(series)
    traces = {t.name: _trace(t.head.out_dim, n, state.track(t.name)) for t in tasks}
    skips = {t.name: t.head.skip for t in tasks}
    inits = {t.name: _numpy(learners.init_numpy(t.name), skips[t.name]) for t in tasks}
    reservoirs: dict[str, list[Episode]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    rng = random.Random(seed)
    capacity = settings.replay.capacity
    vol, fast_var, regime, shifts = np.full(n, np.nan), np.full(n, np.nan), np.full(n, -1), []
    meta_updates = meta_errors = 0
    out = Effects()
    for i in range(n):
        event = MarketEvent(
            stream=series.stream,
            ts_ms=int(series.ts_ms[i]),
            price=float(series.price[i]),
            volume=None if series.volume is None else float(series.volume[i]),
        )
        if state.on_event(event, i, out) is not None:
            continue
        vol[i] = state.features.vol
        fast_var[i] = state.features.fast_var
        for track in state.tracks:
            trace = traces[track.config.task.name]
            x = _formed_at(track, i)
            if x is None:
                continue
            init = inits[track.config.task.name]
            # Before a policy is published a subscriber holds none: it uses the baseline,
            # which every task here forecasts with a constant output.
            live = track.live.model
            constant = track.scores.baseline.constant_output
            skip = track.config.skip
            if live is not None:
                trace.live[i] = _row(live.predict(x))
            else:  # a constant network, plus the offset inputs it adds to its outputs
                trace.live[i] = _row(constant + x[-skip:]) if skip else constant
            trace.init[i] = _row(init.predict(x))
            if trace.positions is not None:
                trace.positions[i] = track.labeler.rule.positions
            if trace.reference is not None:
                trace.reference[i] = track.labeler.rule.reference
        if (i + 1) % batch == 0 or i == n - 1:
            state.finish_batch(inits, out)
            shifts += [s.shift.index for s in out.shifts]
            _adapt(state, learners, out.requests, traces, i)
            for retired in out.retirements:  # as the service does: the baseline goes live
                track = state.track(retired.task)
                if track.live.weights is retired.weights:
                    track.adopt_baseline(retired.weights, track.live.version + 1)
                traces[retired.task].retired += 1
            for name, episode in out.episodes:
                seen[name] += 1
                _reservoir_add(reservoirs[name], episode, seen[name], capacity, rng)
            out = Effects()
        regime[i] = _regime_of(state)
        if (i + 1) % meta_every == 0 and (meta_until is None or i < meta_until):
            for name, items in reservoirs.items():
                if len(items) < settings.adaptation.meta_min_items:
                    continue
                for _ in range(settings.adaptation.meta_steps):
                    sample = rng.sample(items, min(settings.adaptation.meta_batch, len(items)))
                    try:
                        done = learners.meta_train(name, sample) is not None
                    except FloatingPointError:
                        # Undone by the learner; the daemon's meta-trainer counts an error
                        # and goes on with the next round, and so does the harness.
                        meta_errors += 1
                        continue
                    meta_updates += int(done)
                inits[name] = _numpy(learners.init_numpy(name), skips[name])
    return Replay(vol, fast_var, regime, shifts, traces, meta_updates, meta_errors)


def _adapt(
    state: StreamState,
    learners: TaskLearners,
    requests: Sequence,
    traces: dict[str, TaskTrace],
    index: int,
) -> None:
    queue = list(requests)
    while queue:
        request = queue.pop(0)
        track = state.track(request.task)
        if track.live.pending is not request:
            continue
        outcome = learners.adapt(adapt_job(request), 10.0)
        trace = traces[request.task]
        trace.adaptations += 1
        trace.outcomes.append(
            (
                outcome.query_loss_before,
                outcome.query_loss_after,
                outcome.query_loss_scratch,
                outcome.seconds,
            )
        )
        published = None
        if outcome.publish:  # the version the policy store would draw next
            published = Published(track.live.version + 1, outcome.weights)
            trace.published += 1
            trace.publish_rows.append(index)
        nxt = track.settle(request, published)
        if nxt is not None:
            queue.append(nxt)


def _formed_at(track: TaskTrack, index: int) -> np.ndarray | None:
    """The features of the example the track formed at ``index`` (None in warm-up)."""
    x = track.labeler.formed_at(index)
    return None if x is None else np.asarray(x, dtype=np.float32)


def _regime_of(state: StreamState) -> int:
    return int(state.tracks[0].regimes.regime)


def _numpy(params: dict[str, np.ndarray], skip: int = 0) -> NumpyPolicy:
    return NumpyPolicy.from_params(params, activation=ACTIVATION, skip=skip)


def _trace(out_dim: int, n: int, track: TaskTrack) -> TaskTrace:
    shape = (n,) if out_dim == 1 else (n, out_dim)
    trace = TaskTrace(np.full(shape, np.nan), np.full(shape, np.nan))
    rule = track.labeler.rule
    held = getattr(rule, "positions", None)
    if held is not None:
        trace.positions = np.full((n, len(held)), np.nan)
    if isinstance(getattr(rule, "reference", None), float):
        trace.reference = np.full(n, np.nan)
    return trace


def _row(value: np.ndarray) -> float | np.ndarray:
    """One event's raw output: a number, or one value per class."""
    flat = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(flat[0]) if flat.size == 1 else flat
