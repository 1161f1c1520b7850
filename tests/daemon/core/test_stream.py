from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from state_support import stored

from adaptd.adapters.serving import NumpyPolicy
from adaptd.daemon.config.settings import Settings, load_settings
from adaptd.daemon.core.calendar import calendar_columns
from adaptd.daemon.core.effects import AdaptationRequest, Effects, ShiftEvent
from adaptd.daemon.core.features import FeatureExtractor
from adaptd.daemon.core.labels import DelayedLabeler, Example
from adaptd.daemon.core.schema import MarketEvent, Reason
from adaptd.daemon.core.stream import StreamConfig, StreamState
from adaptd.daemon.service.configs import stream_config, tasks_of
from adaptd.replay.episode import Episode, encode_episode

H = 3  # label horizon
SHOTS, QUERY = 12, 4
EPISODE = 16
TOLERANCE_MS = 1000
T0, DT = 1_700_000_000_000, 100
OFF0, OFF_STEP = 1000, 2  # offsets with gaps, as when streams share a partition
# Quiet, then trending and more volatile, then falling and calmer.
REGIMES = ((0.0, 0.001), (0.003, 0.004), (-0.002, 0.0015))


def make_settings(episode_size: int = EPISODE, validate: bool = True) -> Settings:
    return load_settings(
        environ={},
        features={
            "momentum_horizons": [5, 20],
            "warmup_events": 20,
            "label_horizon": H,
            "max_out_of_order_ms": TOLERANCE_MS,
        },
        detection={"warmup_events": 100, "cooldown_events": 50},
        adaptation={"shots": SHOTS, "query_size": QUERY, "validate_policies": validate},
        replay={"episode_size": episode_size},
    )


def make_config(episode_size: int = EPISODE, validate: bool = True) -> StreamConfig:
    settings = make_settings(episode_size, validate)
    return stream_config(settings, tasks_of(settings))


def regime_walk(
    n: int,
    changes: Sequence[int],
    seed: int = 0,
    regimes: Sequence[tuple[float, float]] = REGIMES,
) -> list[float]:
    """Prices of a random walk whose (drift, volatility) moves to the next of ``regimes`` at
    each index in changes."""
    rng = np.random.default_rng(seed)
    log_price, prices = 0.0, []
    for i in range(n):
        mu, sigma = regimes[sum(i >= c for c in changes)]
        log_price += mu + sigma * rng.standard_normal()
        prices.append(100.0 * float(np.exp(log_price)))
    return prices


def offset_of(i: int) -> int:
    return OFF0 + OFF_STEP * i


def market_events(prices: Sequence[float], stream: str = "X") -> list[MarketEvent]:
    return [MarketEvent(stream=stream, ts_ms=T0 + DT * i, price=p) for i, p in enumerate(prices)]


def reference_examples(config: StreamConfig, prices: Sequence[float]) -> list[Example]:
    """The labelled examples of the stream, from the feature and label modules directly."""
    features = FeatureExtractor(config.features)
    labeler = DelayedLabeler(config.tasks[0].label_rule())
    out = []
    for i, price in enumerate(prices):
        x = features.update(price)
        example = labeler.push(i, features, x, offset_of(i), T0 + DT * i)
        if example is not None:
            out.append(example)
    return out


def feed(
    state: StreamState,
    events: Sequence[MarketEvent],
    batch: int,
    start: int = 0,
    default_policy: NumpyPolicy | None = None,
) -> list[tuple[int, Effects]]:
    """Process events[start:] in batches; returns (index of the batch's last event, effects)."""
    results = []
    for b in range(start, len(events), batch):
        out = Effects()
        end = min(len(events), b + batch)
        for i in range(b, end):
            assert state.on_event(events[i], offset_of(i), out) is None
            out.processed += 1
        state.finish_batch({} if default_policy is None else {"return": default_policy}, out)
        results.append((end - 1, out))
    return results


def collect(results: list[tuple[int, Effects]], what: str) -> list[Any]:
    """Effects of one kind over the batches (episodes without their task's name)."""
    items = [item for _, out in results for item in getattr(out, what)]
    return [episode for _, episode in items] if what == "episodes" else items


def policy_weights(in_dim: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "layers.0.weight": rng.normal(0.0, 0.5, size=(8, in_dim)).astype(np.float32),
        "layers.0.bias": rng.normal(0.0, 0.1, size=8).astype(np.float32),
        "layers.2.weight": rng.normal(0.0, 0.5, size=(1, 8)).astype(np.float32),
        "layers.2.bias": rng.normal(0.0, 0.1, size=1).astype(np.float32),
    }


def assert_examples(x: np.ndarray, y: np.ndarray, examples: Sequence[Example]) -> None:
    np.testing.assert_array_equal(x, np.array([e.x for e in examples], dtype=np.float32))
    np.testing.assert_array_equal(y, np.array([e.y for e in examples], dtype=np.float32))


def assert_tiles(episodes: Sequence[Episode], examples: Sequence[Example]) -> int:
    """Episodes hold the examples in order, each exactly once; returns how many they hold."""
    used = 0
    for ep in episodes:
        chunk = examples[used : used + ep.n]
        assert len(chunk) == ep.n
        assert (ep.first_offset, ep.last_offset) == (chunk[0].offset, chunk[-1].offset)
        assert (ep.first_ts_ms, ep.last_ts_ms) == (chunk[0].ts_ms, chunk[-1].ts_ms)
        assert_examples(*ep.arrays(), chunk)
        used += ep.n
    return used


def shift_view(ev: ShiftEvent) -> tuple[Any, ...]:
    return (ev.id, ev.stream, ev.shift, ev.segment, ev.topic, ev.partition, ev.offset, ev.ts_ms)


def request_view(req: AdaptationRequest) -> tuple[Any, ...]:
    weights = None
    if req.parent_weights is not None:
        weights = {k: v.tobytes() for k, v in sorted(req.parent_weights.items())}
    arrays = (req.support_x, req.support_y, req.query_x, req.query_y)
    return (
        req.id,
        req.stream,
        shift_view(req.shift),
        tuple(a.tobytes() for a in arrays),
        req.parent_version,
        weights,
        req.first_offset,
        req.last_offset,
    )


def batch_view(out: Effects) -> tuple[Any, ...]:
    return (
        [shift_view(s) for s in out.shifts],
        [(t, encode_episode(e)) for t, e in out.episodes],
        [request_view(r) for r in out.requests],
        out.processed,
        out.examples,
        dict(out.firings),
        len(out.dead_letters),
    )


# -- a regime change ---------------------------------------------------------------------


def test_a_regime_change_gives_one_shift_then_one_request_from_the_new_regime() -> None:
    config = make_config()
    prices = regime_walk(1200, changes=[600])
    state = StreamState("X", "in", 3, config)
    results = feed(state, market_events(prices), batch=1)
    examples = reference_examples(config, prices)

    shifts = [(i, s) for i, out in results for s in out.shifts]
    assert len(shifts) == 1
    at, shift = shifts[0]
    assert 600 <= shift.shift.first_index <= shift.shift.index == at < 700
    assert shift.id == f"X@in:3:{offset_of(at)}"
    assert (shift.stream, shift.topic, shift.partition, shift.segment) == ("X", "in", 3, 1)
    assert (shift.offset, shift.ts_ms) == (offset_of(at), T0 + DT * at)

    requests = [(i, r) for i, out in results for r in out.requests]
    assert len(requests) == 1
    emitted_at, request = requests[0]
    first = shift.shift.first_index
    used = [e for e in examples if e.index >= first][:SHOTS]
    assert [e.index for e in used] == list(range(first, first + SHOTS))
    # Emitted as soon as the last of those examples matured, H events after it formed.
    assert emitted_at == used[-1].index + H
    assert request.id == shift.id
    assert request.shift == shift
    assert request.support_x.shape == (SHOTS - QUERY, len(config.feature_names))
    assert request.query_x.shape == (QUERY, len(config.feature_names))
    assert request.support_y.shape == (SHOTS - QUERY,)
    assert request.query_y.shape == (QUERY,)
    assert_examples(request.support_x, request.support_y, used[:-QUERY])
    assert_examples(request.query_x, request.query_y, used[-QUERY:])
    assert (request.first_offset, request.last_offset) == (used[0].offset, used[-1].offset)
    assert (request.parent_version, request.parent_weights) == (0, None)
    assert state.tracks[0].live.pending is request
    assert state.tracks[0].live.queued is None


def test_the_examples_since_the_estimated_change_open_the_new_regime() -> None:
    settings = make_settings()
    settings = settings.model_copy(
        update={
            "detection": settings.detection.model_copy(
                update={"detectors": ("cusum",), "channels": ("returns",)}
            )
        }
    )
    config = stream_config(settings, tasks_of(settings))
    # A drift of 0.6 standard deviations an event: the CUSUM needs some 50 events to be sure.
    prices = regime_walk(1200, changes=[600], seed=2, regimes=((0.0, 0.001), (0.0006, 0.001)))
    state = StreamState("X", "in", 0, config)
    results = feed(state, market_events(prices), batch=1)
    examples = reference_examples(config, prices)

    (shift,) = collect(results, "shifts")
    begun = shift.shift.location
    # Located before the alarm, near the change; the examples formed between the two had
    # matured and been filed under the old regime when the alarm came.
    assert 595 <= begun < shift.shift.index - H
    # More than SHOTS examples had matured since: the latest of them are the adaptation set,
    # and the request goes out with the shift itself.
    ((emitted_at, request),) = [(i, r) for i, out in results for r in out.requests]
    assert emitted_at == shift.shift.index
    used = [e for e in examples if begun <= e.index <= shift.shift.index - H][-SHOTS:]
    assert used[0].index > begun
    assert_examples(request.support_x, request.support_y, used[:-QUERY])
    assert_examples(request.query_x, request.query_y, used[-QUERY:])
    # The episode open at the shift is split at the change: its examples since then open
    # the new regime's first episode (episodes cut before the alarm stay the old regime's).
    episodes = collect(results, "episodes")
    old = [ep for ep in episodes if ep.segment == 0]
    new = [ep for ep in episodes if ep.segment == 1]
    assert old[-1].last_offset < new[0].first_offset
    assert offset_of(begun) <= new[0].first_offset <= offset_of(shift.shift.index - H)
    assert assert_tiles(episodes, examples) <= len(examples)


def test_no_shift_on_a_steady_stream() -> None:
    state = StreamState("X", "in", 0, make_config())
    results = feed(state, market_events(regime_walk(1200, changes=[])), batch=50)
    assert collect(results, "shifts") == []
    assert collect(results, "requests") == []
    assert state.tracks[0].regimes.regime == 0


# -- episodes ----------------------------------------------------------------------------


def expected_episodes(
    examples: Sequence[Example], shift_events: set[int], size: int
) -> tuple[list[tuple[int, list[Example]]], list[Example]]:
    """(regime, examples) per episode when every event is its own batch, and the buffer.

    The example formed at event t is filed when event t + H arrives; a shift confirmed at
    that event cuts the episode after it (its features predate the shift)."""
    episodes: list[tuple[int, list[Example]]] = []
    current: list[Example] = []
    regime = 0
    for example in examples:
        current.append(example)
        if len(current) == size:
            episodes.append((regime, current))
            current = []
        if example.index + H in shift_events:
            if current:
                episodes.append((regime, current))
            current, regime = [], regime + 1
    return episodes, current


def test_episodes_are_cut_at_episode_size_and_at_every_shift() -> None:
    config = make_config()
    prices = regime_walk(1300, changes=[500, 900])
    state = StreamState("X", "in", 0, config)
    results = feed(state, market_events(prices), batch=1)
    examples = reference_examples(config, prices)
    shifts = collect(results, "shifts")
    assert len(shifts) == 2
    assert [s.segment for s in shifts] == [1, 2]

    episodes = collect(results, "episodes")
    want, buffered = expected_episodes(examples, {s.shift.index for s in shifts}, EPISODE)
    assert [(ep.segment, ep.n) for ep in episodes] == [(r, len(exs)) for r, exs in want]
    # Some episodes ended early, at a shift.
    assert sum(ep.n < EPISODE for ep in episodes) == 2
    used = assert_tiles(episodes, examples)
    assert used + len(buffered) == len(examples) == sum(out.examples for _, out in results)
    assert all(ep.stream == "X" and ep.topic == "in" and ep.partition == 0 for ep in episodes)
    assert all(ep.feature_names == config.feature_names for ep in episodes)
    # The cut happens in the effects of the event that confirmed the shift.
    for _, out in results:
        if out.shifts:
            assert [ep.segment for _, ep in out.episodes] == [out.shifts[0].segment - 1]


@pytest.mark.parametrize("batch", [7, 50])
def test_episodes_tile_the_examples_whatever_the_batches(batch: int) -> None:
    config = make_config()
    prices = regime_walk(1300, changes=[500, 900])
    state = StreamState("X", "in", 0, config)
    results = feed(state, market_events(prices), batch=batch)
    examples = reference_examples(config, prices)
    episodes = collect(results, "episodes")
    used = assert_tiles(episodes, examples)
    assert 0 <= len(examples) - used < EPISODE  # the partial episode is still buffered
    assert all(1 <= ep.n <= EPISODE for ep in episodes)
    regimes = [ep.segment for ep in episodes]
    assert regimes == sorted(regimes)
    assert set(regimes) == {0, 1, 2}


def test_a_single_buffered_example_at_a_shift_still_lands_in_an_episode() -> None:
    prices = regime_walk(1300, changes=[500, 900])
    probe = make_config()
    shifts = collect(feed(StreamState("X", "in", 0, probe), market_events(prices), 1), "shifts")
    examples = reference_examples(probe, prices)
    # The example maturing at the shift's event predates the shift: it is filed before the cut.
    filed_before = sum(e.index + H <= shifts[0].shift.index for e in examples)
    # An episode size that leaves exactly one example buffered when the first shift comes
    # (k = filed_before - 1 always does).
    size = next(k for k in range(2, filed_before) if filed_before % k == 1)
    config = make_config(episode_size=size)
    results = feed(StreamState("X", "in", 0, config), market_events(prices), batch=1)
    episodes = collect(results, "episodes")
    assert any(ep.n == 1 for ep in episodes)
    used = assert_tiles(episodes, examples)
    assert len(examples) - used < size


def test_effects_do_not_depend_on_batch_boundaries() -> None:
    prices = regime_walk(1300, changes=[500, 900])
    events = market_events(prices)
    one_by_one = feed(StreamState("X", "in", 0, make_config()), events, batch=1)
    all_at_once = feed(StreamState("X", "in", 0, make_config()), events, batch=len(events))
    assert [shift_view(s) for s in collect(one_by_one, "shifts")] == [
        shift_view(s) for s in collect(all_at_once, "shifts")
    ]
    assert [
        (e.segment, e.regime, e.first_offset, e.n) for e in collect(one_by_one, "episodes")
    ] == [(e.segment, e.regime, e.first_offset, e.n) for e in collect(all_at_once, "episodes")]
    assert [request_view(r) for r in collect(one_by_one, "requests")] == [
        request_view(r) for r in collect(all_at_once, "requests")
    ]


# -- requests: one in flight, the next queued -------------------------------------------


def test_a_second_request_waits_and_complete_hands_it_over_with_the_live_parent() -> None:
    config = make_config()
    prices = regime_walk(1300, changes=[500, 900])
    examples = reference_examples(config, prices)
    state = StreamState("X", "in", 0, config)
    results = feed(state, market_events(prices), batch=1)
    shifts = collect(results, "shifts")
    requests = collect(results, "requests")
    assert len(shifts) == 2
    assert [r.id for r in requests] == [shifts[0].id]  # the second one was not emitted
    first = requests[0]
    queued = state.tracks[0].live.queued
    assert state.tracks[0].live.pending is first
    assert queued is not None
    assert queued.id == shifts[1].id
    second_start = shifts[1].shift.first_index
    used = [e for e in examples if e.index >= second_start][:SHOTS]
    assert_examples(queued.support_x, queued.support_y, used[:-QUERY])
    assert_examples(queued.query_x, queued.query_y, used[-QUERY:])
    assert (queued.parent_version, queued.parent_weights) == (0, None)

    weights = policy_weights(len(config.feature_names), seed=1)
    state.tracks[0].adopt(5, weights, None)
    assert state.tracks[0].complete("not-the-pending-one") is None
    assert state.tracks[0].live.pending is first
    handed = state.tracks[0].complete(first.id)
    # The queued request, now against the policy live when it is handed over.
    same = [0, 1, 2, 3, 6, 7]  # all but the parent's version and weights
    assert [request_view(handed)[i] for i in same] == [request_view(queued)[i] for i in same]
    assert handed is not queued and queued.parent_version == 0
    assert handed.parent_version == 5
    assert handed.parent_weights is weights
    assert state.tracks[0].live.pending is handed
    assert state.tracks[0].live.queued is None
    assert state.tracks[0].complete(handed.id) is None
    assert state.tracks[0].live.pending is None


def test_adopt_makes_the_policy_live_for_prequential_scoring() -> None:
    # Validation would retire this random policy part-way: the test is about its scores.
    config = make_config(validate=False)
    d = len(config.feature_names)
    prices = regime_walk(400, changes=[])
    events = market_events(prices)
    examples = {e.index: e for e in reference_examples(config, prices)}
    default = NumpyPolicy.from_params(policy_weights(d, seed=0))
    live_weights = policy_weights(d, seed=1)
    live = NumpyPolicy.from_params(live_weights)

    def sums(policy: NumpyPolicy, lo: int, hi: int) -> np.ndarray:
        # Examples that matured at events lo..hi-1 (formed H events earlier).
        chosen = [examples[i - H] for i in range(lo, hi) if i - H in examples]
        x = np.array([e.x for e in chosen], dtype=np.float32)
        y = np.array([e.y for e in chosen], dtype=np.float32)
        return np.array(
            [((policy.predict(x) - y) ** 2).sum(), float((y * y).sum()), len(chosen)],
            dtype=np.float64,
        )

    state = StreamState("X", "in", 0, config)
    assert state.tracks[0].scores.mean()[3] == 0
    feed(state, events[:200], batch=25, default_policy=default)
    before = np.array(state.tracks[0].scores.sums, dtype=np.float64)
    d_sse, y2, n = sums(default, 0, 200)
    np.testing.assert_allclose(before, [d_sse, d_sse, y2, n], rtol=1e-6)

    state.tracks[0].adopt(1, live_weights, None)
    assert (state.tracks[0].live.version, state.tracks[0].live.weights) == (1, live_weights)
    feed(state, events, batch=25, start=200, default_policy=default)
    delta = np.array(state.tracks[0].scores.sums, dtype=np.float64) - before
    l_sse, y2, n = sums(live, 200, 400)
    d_sse, _, _ = sums(default, 200, 400)
    assert l_sse != pytest.approx(d_sse, rel=1e-3)  # the two policies differ
    np.testing.assert_allclose(delta, [l_sse, d_sse, y2, n], rtol=1e-6)
    live_mse, init_mse, zero_mse, count = state.tracks[0].scores.mean()
    assert count == len(examples)
    assert live_mse == pytest.approx(state.tracks[0].scores.sums[0] / count)
    assert zero_mse == pytest.approx(state.tracks[0].scores.sums[2] / count)
    assert init_mse == pytest.approx(state.tracks[0].scores.sums[1] / count)


def test_without_any_policy_nothing_is_scored() -> None:
    state = StreamState("X", "in", 0, make_config())
    results = feed(state, market_events(regime_walk(200, changes=[])), batch=10)
    assert sum(out.examples for _, out in results) > 0
    assert state.tracks[0].scores.mean()[3] == 0
    assert np.isnan(state.tracks[0].scores.mean()[0])


# -- order -------------------------------------------------------------------------------


def test_events_too_far_out_of_order_are_rejected_without_changing_state() -> None:
    config = make_config()
    events = market_events(regime_walk(300, changes=[]))
    a, b = StreamState("X", "in", 0, config), StreamState("X", "in", 0, config)
    feed(a, events[:200], batch=10)
    feed(b, events[:200], batch=10)
    newest = events[199].ts_ms
    index, snapshot = a.index, pickle.dumps(a)
    out = Effects()
    late = MarketEvent(stream="X", ts_ms=newest - TOLERANCE_MS - 1, price=events[199].price * 2)
    rejection = a.on_event(late, offset_of(200), out)
    assert rejection is not None
    assert rejection.reason is Reason.OUT_OF_ORDER
    assert str(TOLERANCE_MS) in rejection.detail
    a.finish_batch({}, out)
    assert len(out) == 0
    assert out.examples == 0
    assert a.index == index
    assert a.max_ts_ms == newest
    assert pickle.dumps(a) == snapshot
    # Both continue identically.
    ra = feed(a, events, batch=10, start=200)
    rb = feed(b, events, batch=10, start=200)
    assert [batch_view(o) for _, o in ra] == [batch_view(o) for _, o in rb]


def test_events_within_the_tolerance_are_processed() -> None:
    state = StreamState("X", "in", 0, make_config())
    events = market_events(regime_walk(100, changes=[]))
    feed(state, events, batch=100)
    newest, index = state.max_ts_ms, state.index
    out = Effects()
    for lag in (TOLERANCE_MS, 1):  # exactly at the tolerance, then barely late
        event = MarketEvent(stream="X", ts_ms=newest - lag, price=events[-1].price)
        assert state.on_event(event, offset_of(state.index), out) is None
    assert state.index == index + 2
    assert state.max_ts_ms == newest  # a late event does not move the clock back


# -- snapshots ---------------------------------------------------------------------------


def test_a_pickled_stream_continues_exactly_like_the_original() -> None:
    config = make_config()
    d = len(config.feature_names)
    events = market_events(regime_walk(1300, changes=[500, 900]))
    default = NumpyPolicy.from_params(policy_weights(d, seed=0))
    original = StreamState("X", "in", 0, config)
    first = feed(original, events[:700], batch=10, default_policy=default)
    assert collect(first, "requests")  # so a request is pending in the snapshot
    a = original.tracks[0]
    assert a.live.pending is not None
    a.adopt(1, policy_weights(d, seed=1), None)

    copy = stored(original)
    copy.attach(config)
    b = copy.tracks[0]
    assert b.live.model is not None and a.live.model is not None
    probe = np.random.default_rng(0).normal(size=(5, d))
    np.testing.assert_array_equal(b.live.model.predict(probe), a.live.model.predict(probe))
    assert request_view(b.live.pending) == request_view(a.live.pending)

    ra = feed(original, events, batch=10, start=700, default_policy=default)
    rb = feed(copy, events, batch=10, start=700, default_policy=default)
    assert collect(ra, "shifts")  # the continuation has something to agree on
    assert collect(ra, "episodes")
    assert [batch_view(o) for _, o in ra] == [batch_view(o) for _, o in rb]
    assert b.scores.sums == a.scores.sums
    assert request_view(b.live.queued) == request_view(a.live.queued)
    handed_a = a.complete(a.live.pending.id)
    handed_b = b.complete(b.live.pending.id)
    assert request_view(handed_a) == request_view(handed_b)


def test_the_snapshot_leaves_out_the_shared_config_and_the_derived_model() -> None:
    config = make_config()
    state = StreamState("X", "in", 0, config)
    state.tracks[0].adopt(2, policy_weights(len(config.feature_names), seed=3), None)
    restored = stored(state)
    assert restored.tracks[0].live.model is None
    assert restored.tracks[0].live.version == 2
    other = make_config()
    restored.attach(other)
    assert restored.config is other
    assert restored.tracks[0].config is other.tracks[0]
    assert restored.tracks[0].live.model is not None


# -- firings -----------------------------------------------------------------------------


def test_firings_are_the_raw_detector_firing_deltas() -> None:
    config = make_config()
    d = len(config.feature_names)
    events = market_events(regime_walk(1300, changes=[500, 900]))
    default = NumpyPolicy.from_params(policy_weights(d, seed=0))
    state = StreamState("X", "in", 0, config)
    results = feed(state, events, batch=10, default_policy=default)
    total: dict[tuple[str, str], int] = {}
    for _, out in results:
        for pair, n in out.firings.items():
            assert n > 0
            total[pair] = total.get(pair, 0) + n
    counts = {pair: n for pair, n in state.detector.firing_counts.items() if n}
    assert total == counts
    assert sum(total.values()) >= len(collect(results, "shifts")) >= 2
    # Batches without a firing report none.
    assert any(not out.firings for _, out in results)


def test_calendar_features_come_from_each_events_time() -> None:
    settings = make_settings()
    features = settings.features.model_dump() | {"calendar": ["hour_of_day", "day_of_week"]}
    settings = settings.model_copy(update={"features": type(settings.features)(**features)})
    config = stream_config(settings, tasks_of(settings))
    hour = 3_600_000
    prices = regime_walk(300, changes=[])
    events = [MarketEvent(stream="X", ts_ms=T0 + hour * i, price=p) for i, p in enumerate(prices)]
    episodes = collect(feed(StreamState("X", "in", 0, config), events, batch=25), "episodes")
    assert episodes and all(ep.feature_names == config.feature_names for ep in episodes)
    for ep in episodes:
        x, _ = ep.arrays()
        times = ep.first_ts_ms + hour * np.arange(ep.n)  # an example at every event
        assert ep.last_ts_ms == times[-1]
        want = calendar_columns(times, ["hour_of_day", "day_of_week"])
        np.testing.assert_allclose(x[:, -4:], want, atol=1e-6)


def test_a_stream_named_in_detection_streams_gets_its_own_detectors() -> None:
    settings = make_settings()
    detection = settings.detection.model_copy(
        update={"streams": {"B": {"detectors": ["cusum"], "skip": []}}}
    )
    settings = settings.model_copy(update={"detection": detection})
    config = stream_config(settings, tasks_of(settings))
    a, b = (StreamState(name, "in", 0, config) for name in "AB")
    assert {d for d, _ in a.detector.firing_counts} == {"adwin", "page_hinkley"}
    assert set(b.detector.firing_counts) == {
        ("cusum", c) for c in ("returns", "volatility", "error")
    }
    # Restored, a stream keeps the detectors its state was learnt with.
    twin = stored(b)
    twin.attach(config)
    assert set(twin.detector.firing_counts) == set(b.detector.firing_counts)


# -- shifts confirmed before they are acted on --------------------------------------------


def confirmed_config(**detection: Any) -> StreamConfig:
    settings = make_settings()
    update = {"detectors": ("cusum",), "skip": (), "confirm": True, "extreme_z": 0.0, **detection}
    settings = settings.model_copy(
        update={"detection": settings.detection.model_copy(update=update)}
    )
    return stream_config(settings, tasks_of(settings))


def test_a_retracted_shift_is_never_acted_on() -> None:
    prices = regime_walk(1300, changes=[500, 900])
    events = market_events(prices)
    # A penalty no segmentation can pay: every shift is retracted.
    results = feed(StreamState("X", "in", 0, confirmed_config(confirm_penalty=1e9)), events, 50)
    kept = feed(StreamState("X", "in", 0, confirmed_config()), events, 50)
    held = len(collect(kept, "shifts"))
    assert held >= 2
    assert collect(results, "shifts") == [] and collect(results, "requests") == []
    outcomes = [out.confirmations for _, out in results if out.confirmations]
    assert sum(o.get("retracted", 0) for o in outcomes) == held
    assert all(set(o) == {"retracted"} for o in outcomes)
    # Its examples stay in the old regime: one segment throughout.
    assert {e.segment for e in collect(results, "episodes")} == {0}


def test_a_confirmed_shift_carries_the_segmentation_location() -> None:
    prices = regime_walk(1300, changes=[500, 900])
    state = StreamState("X", "in", 0, confirmed_config())
    results = feed(state, market_events(prices), 50)
    shifts = [ev.shift for ev in collect(results, "shifts")]
    counted: dict[str, int] = {}
    for _, out in results:
        for outcome, n in out.confirmations.items():
            counted[outcome] = counted.get(outcome, 0) + n
    assert sum(counted.values()) == len(shifts) + counted.get("retracted", 0)
    assert all(min(abs(s.change_index - c) for s in shifts) <= 5 for c in (500, 900))
    after = state.config.detection.confirm_after
    assert all(s.index >= s.change_index + after - 1 for s in shifts)


def test_confirmed_effects_do_not_depend_on_batch_boundaries() -> None:
    prices = regime_walk(1300, changes=[500, 900])
    events = market_events(prices)
    one = feed(StreamState("X", "in", 0, confirmed_config()), events, batch=1)
    many = feed(StreamState("X", "in", 0, confirmed_config()), events, batch=len(events))
    assert [shift_view(s) for s in collect(one, "shifts")] == [
        shift_view(s) for s in collect(many, "shifts")
    ]
    assert [request_view(r) for r in collect(one, "requests")] == [
        request_view(r) for r in collect(many, "requests")
    ]


def test_checks_run_elsewhere_are_not_run_again() -> None:
    prices = regime_walk(1300, changes=[500, 900])
    events = market_events(prices)
    state, twin = (StreamState("X", "in", 0, confirmed_config()) for _ in range(2))
    ran = 0
    for b in range(0, len(events), 100):
        outs = Effects(), Effects()
        for i in range(b, min(len(events), b + 100)):
            state.on_event(events[i], offset_of(i), outs[0])
            twin.on_event(events[i], offset_of(i), outs[1])
        checks = state.checks()
        for check in checks:
            check.run()
            check.confirmation = None  # type: ignore[assignment]  # a second run would fail
        ran += len(checks)
        state.finish_batch({}, outs[0])
        twin.finish_batch({}, outs[1])
        assert [shift_view(s) for s in outs[0].shifts] == [shift_view(s) for s in outs[1].shifts]
    assert ran >= 2


def test_a_track_whose_task_appends_other_inputs_now_starts_fresh_and_adopts_no_misfit() -> None:
    # The strategy task switched to Hedge between two runs: the restored track's examples
    # and policies have the features' width, the task's network now reads five more.
    def strategy_config(ensemble: str, **options: float) -> StreamConfig:
        settings = load_settings(
            environ={},
            features={"label_horizon": 1},
            adaptation={
                "tasks": ["return", "strategy"],
                "task_options": {"strategy": {"ensemble": ensemble, **options}},
            },
        )
        return stream_config(settings, tasks_of(settings))

    equal, hedge = strategy_config("equal"), strategy_config("hedge")
    state = StreamState("X", "t", 0, equal)
    events = market_events(regime_walk(350, [], seed=2))
    out = Effects()
    for i, ev in enumerate(events[:300]):
        state.on_event(ev, offset_of(i), out)
    width = len(equal.feature_names)

    def weights(in_dim: int, out_dim: int) -> dict[str, np.ndarray]:
        w = policy_weights(in_dim, 0)
        w["layers.2.weight"] = np.zeros((out_dim, 8), np.float32)
        w["layers.2.bias"] = np.zeros(out_dim, np.float32)
        return w

    for track, k in zip(state.tracks, (1, 5), strict=True):
        track.catch_up(3, weights(width, k), validate=False)
    assert [t.live.version for t in state.tracks] == [3, 3]

    same = stored(state)
    same.attach(equal)
    assert [t.live.version for t in same.tracks] == [3, 3]
    switched = stored(state)
    switched.attach(hedge)
    ret, strategy = switched.tracks
    assert ret.live.version == 3  # the return task is as it was
    assert strategy.live.version == 0 and strategy.labeler.pending == 0
    assert strategy.labeler.rule.inputs == strategy.config.task.inputs != ()
    # A policy of the old width is not adopted (it could not read the examples); one of the
    # new width is.
    assert not strategy.catch_up(4, weights(width, 5), validate=False)
    assert strategy.catch_up(4, weights(width + 5, 5), validate=False)
    out = Effects()
    for i, ev in enumerate(events[300:], start=300):
        switched.on_event(ev, offset_of(i), out)
    x = strategy.labeler.formed_at(switched.index - 1)
    assert x is not None and len(x) == width + 5

    # Hedge's parameters changed (its rate here; the defaults, on an upgrade): the track
    # starts afresh, with the Hedge that the messages, written from the settings, define.
    kept = stored(switched)
    kept.attach(hedge)
    assert kept.tracks[1].live.version == 4
    faster = stored(switched)
    faster.attach(strategy_config("hedge", hedge_eta=0.2))
    ret, strategy = faster.tracks
    assert ret.live.version == 3 and strategy.live.version == 0
    assert strategy.labeler.rule.hedge.eta == 0.2
    assert strategy.labeler.rule.hedge.score == [0.0] * 5
