"""Several policy tasks on one stream: each on its own track, sharing features and shifts."""

from __future__ import annotations

import numpy as np
from direction_task import DirectionTask
from state_support import stored

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.schema import MarketEvent
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.service.configs import stream_config, tasks_of

SETTINGS = load_settings(
    environ={},
    features={"momentum_horizons": [5, 20], "warmup_events": 20, "label_horizon": 3},
    detection={"warmup_events": 100, "cooldown_events": 50},
    adaptation={"shots": 12, "query_size": 4},
    replay={"episode_size": 16},
)
RETURN = tasks_of(SETTINGS)
BOTH = (*RETURN, DirectionTask(horizon=3, clip=10.0))


def events(n: int = 1400, seed: int = 5) -> list[MarketEvent]:
    rng = np.random.default_rng(seed)
    rets = np.r_[rng.normal(0, 0.001, 700), rng.normal(0.004, 0.006, n - 700)]
    prices = 100 * np.exp(np.cumsum(rets))
    return [
        MarketEvent(stream="S", ts_ms=1_700_000_000_000 + 1000 * i, price=float(p))
        for i, p in enumerate(prices)
    ]


def run(state: StreamState, evs: list[MarketEvent], start: int = 0) -> Effects:
    out = Effects()
    for b in range(start, len(evs), 20):
        for i in range(b, min(len(evs), b + 20)):
            assert state.on_event(evs[i], i, out) is None
        state.finish_batch({}, out)
    return out


def test_a_second_task_changes_nothing_for_the_first() -> None:
    evs = events()
    alone = run(StreamState("S", "in", 0, stream_config(SETTINGS, RETURN)), evs)
    both = run(StreamState("S", "in", 0, stream_config(SETTINGS, BOTH)), evs)
    assert [s.id for s in both.shifts] == [s.id for s in alone.shifts]  # shared detectors
    first = [(e.id, e.regime) for t, e in both.episodes if t == "return"]
    assert first == [(e.id, e.regime) for _, e in alone.episodes]
    ids = [r.id for r in both.requests if r.task == "return"]
    assert ids == [r.id for r in alone.requests]


def test_each_task_has_its_own_examples_episodes_and_requests() -> None:
    state = StreamState("S", "in", 0, stream_config(SETTINGS, BOTH))
    out = run(state, events())
    ret, direction = state.tracks
    assert (ret.task, direction.task) == ("return", "direction")
    assert (ret.model_id, direction.model_id) == ("S", "S/direction")
    d = {t: {e.d for tt, e in out.episodes if tt == t} for t in ("return", "direction")}
    assert d == {"return": {len(state.config.feature_names)}, "direction": {3}}
    requests = {r.task: r for r in out.requests}
    assert requests["direction"].id == f"{requests['return'].id}#direction"
    assert requests["direction"].model == "S/direction"
    assert set(np.unique(requests["direction"].support_y)) <= {0.0, 1.0}
    # Both tracks labelled every example (one horizon): the counts agree.
    assert ret.scores.sums[3] == direction.scores.sums[3] == 0  # no policy yet: none scored


def test_restoring_under_other_tasks_drops_and_adds_tracks() -> None:
    evs = events()
    state = StreamState("S", "in", 0, stream_config(SETTINGS, BOTH))
    run(state, evs[:900])
    snapshot = stored(state)
    snapshot.attach(stream_config(SETTINGS, RETURN))
    assert [t.task for t in snapshot.tracks] == ["return"]
    again = stored(snapshot)
    again.attach(stream_config(SETTINGS, BOTH))
    assert [t.task for t in again.tracks] == ["return", "direction"]
    assert again.tracks[1].labeler.pending == 0  # a fresh track starts labelling now
    out = run(again, evs, start=900)
    assert any(t == "direction" for t, _ in out.episodes)


def test_catch_up_adopts_only_newer_policies_and_rebase_reparents_the_pending_request() -> None:
    state = StreamState("S", "in", 0, stream_config(SETTINGS, RETURN))
    out = run(state, events())
    track = state.track("return")
    request = track.live.pending
    assert request is not None and request is out.requests[0]
    assert request.parent_version == 0
    weights = {
        "layers.0.weight": np.ones((2, len(track.config.feature_names)), np.float32),
        "layers.0.bias": np.zeros(2, np.float32),
        "layers.2.weight": np.ones((1, 2), np.float32),
        "layers.2.bias": np.zeros(1, np.float32),
    }
    narrow = {**weights, "layers.0.weight": np.ones((2, 3), np.float32)}
    assert track.catch_up(4, narrow, validate=False) is False  # it cannot read the inputs
    assert track.catch_up(4, weights, validate=False) is True
    assert (track.live.version, track.validator.version) == (4, 0)
    assert track.catch_up(4, weights, validate=True) is False  # not newer
    assert track.catch_up(2, weights, validate=True) is False
    rebased = track.rebase(request)
    assert rebased is not None and rebased is track.live.pending
    assert (rebased.id, rebased.parent_version) == (request.id, 4)
    assert rebased.parent_weights is weights
    assert track.rebase(request) is None  # no longer the pending one
