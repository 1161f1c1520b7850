"""Snapshots written before the core moved and before policy tasks restore and continue exactly.

``data/legacy_stream.pickle.z`` is a stream's snapshot written by the code of commit 3680ff8
(classes under ``adaptd.daemon.<module>``, one stream-level labeler, episode, adaptation set,
regime book and live policy), taken while a request was in flight and an adaptation set was
being collected; ``data/legacy_stream.json`` holds what that code did next with the same
events. Today's code must restore the snapshot into a stream with one ``return`` track and do
exactly the same.
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adaptd.adapters.serving import NumpyPolicy
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core import state_format
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.schema import MarketEvent
from adaptd.daemon.core.snapshot import MOVED, loads_pickled, migrate_stream_state
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.service.configs import stream_config, tasks_of
from adaptd.replay.episode import encode_episode

DATA = Path(__file__).parent / "data"
FIXTURE = json.loads((DATA / "legacy_stream.json").read_text())


def legacy_setup() -> tuple[Any, list[MarketEvent], NumpyPolicy]:
    """The config, the events and the default policy the fixture was made with."""
    settings = load_settings(environ={}, **FIXTURE["settings"])
    config = stream_config(settings, tasks_of(settings))
    rng = np.random.default_rng(FIXTURE["seed"])
    segments = FIXTURE["segments"]
    rets = [rng.normal(*segments[min(i // 500, 3)]) for i in range(FIXTURE["n"])]
    prices = 100 * np.exp(np.cumsum(rets))
    events = [
        MarketEvent(stream="X", ts_ms=1_700_000_000_000 + 1000 * i, price=float(p))
        for i, p in enumerate(prices)
    ]
    d = len(config.feature_names)
    g = np.random.default_rng(FIXTURE["default_weights_seed"])
    weights = {
        "layers.0.weight": g.normal(size=(4, d)).astype(np.float32),
        "layers.0.bias": np.zeros(4, np.float32),
        "layers.2.weight": g.normal(size=(1, 4)).astype(np.float32) * 0.1,
        "layers.2.bias": np.zeros(1, np.float32),
    }
    return config, events, NumpyPolicy.from_params(weights)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def view(out: Effects) -> dict[str, Any]:
    """The fixture's view of a batch's effects."""
    return {
        "shifts": [s.id for s in out.shifts],
        "episodes": [b64(encode_episode(e)) for _, e in out.episodes],
        "requests": [
            [
                r.id,
                r.parent_version,
                b64(r.support_x.tobytes()),
                b64(r.query_y.tobytes()),
                r.regime.regime_id,
                r.regime.known,
                r.start_weights is not None,
            ]
            for r in out.requests
            if r.regime is not None
        ],
        "regimes": [[m.regime_id, m.known] for _, _, m in out.regimes],
        "examples": out.examples,
        "firings": sorted([[k[0], k[1], v] for k, v in out.firings.items()]),
    }


def test_a_snapshot_from_before_restores_into_a_return_track() -> None:
    config, _, _ = legacy_setup()
    state = loads_pickled(zlib.decompress((DATA / "legacy_stream.pickle.z").read_bytes()))
    assert isinstance(state, StreamState)
    assert state.detector.extreme.threshold == 0.0  # written before extreme moves
    state.attach(config)
    assert state.detector.extreme.threshold == config.detection.extreme_z == 8.0
    at = FIXTURE["at_snapshot"]
    (track,) = state.tracks
    assert (track.task, track.model_id, track.stream) == ("return", "X", "X")
    assert (state.index, state.segment) == (at["index"], at["segment"])
    assert track.regimes.regime == at["regime"]
    assert track.live.version == at["policy_version"]
    assert track.live.model is not None
    assert track.live.pending is not None and track.live.pending.id == at["pending"]
    assert track.live.pending.task == "return" and track.live.pending.model == "X"
    assert track.live.queued is None
    assert track.collector.collecting and len(track.collector.rows) == at["collected"]
    assert len(track.episode) == at["episode_rows"]
    assert track.labeler.pending == at["labeler_pending"]
    assert track.scores.sums == pytest.approx(at["preq"])


@pytest.mark.parametrize("stored_again", [False, True], ids=["as read", "stored typed"])
def test_a_restored_snapshot_from_before_continues_exactly_as_the_old_code_did(
    stored_again: bool,
) -> None:
    config, events, default = legacy_setup()
    state = loads_pickled(zlib.decompress((DATA / "legacy_stream.pickle.z").read_bytes()))
    if stored_again:  # the upgrade: read from the pickle, saved in today's format, read again
        state = state_format.loads(state_format.dumps(state))
    state.attach(config)
    first = FIXTURE["first_offset"]
    views = []
    for b in range(FIXTURE["cut"], FIXTURE["n"], 10):
        out = Effects()
        for i in range(b, min(FIXTURE["n"], b + 10)):
            assert state.on_event(events[i], first + i, out) is None
        state.finish_batch({"return": default}, out)
        views.append(view(out))
    assert views == FIXTURE["after"]
    track = state.tracks[0]
    assert track.scores.sums == pytest.approx(FIXTURE["preq_after"])
    handed = track.complete(track.live.pending.id)
    assert handed is not None
    expected = FIXTURE["handed"]
    assert [handed.id, handed.parent_version, b64(handed.support_x.tobytes())] == expected


def test_the_migrated_state_is_stored_in_todays_layout() -> None:
    config, _, _ = legacy_setup()
    state = loads_pickled(zlib.decompress((DATA / "legacy_stream.pickle.z").read_bytes()))
    again = state_format.loads(state_format.dumps(state))
    again.attach(config)
    assert [t.task for t in again.tracks] == ["return"]
    assert again.tracks[0].live.pending.id == FIXTURE["at_snapshot"]["pending"]


def test_todays_state_is_left_as_it_is() -> None:
    state = {"tracks": (), "_matured": [], "_fired": {}}
    assert migrate_stream_state(state) is state


def test_a_snapshot_from_before_regime_ids_counts_segments_and_gets_a_book() -> None:
    config, _, _ = legacy_setup()
    legacy = loads_pickled(zlib.decompress((DATA / "legacy_stream.pickle.z").read_bytes()))
    old = {
        "stream": "X",
        "topic": "in",
        "partition": 2,
        "features": legacy.features,
        "detector": legacy.detector,
        "index": legacy.index,
        "max_ts_ms": legacy.max_ts_ms,
        "labeler": legacy.tracks[0].labeler,
        "_episode": [],
        "_matured": [],
        "_collect": [],
        "_collect_shift": None,
        "_fired": {},
        "pending": None,
        "queued": None,
        "policy_version": 0,
        "policy_weights": None,
        "preq": [0.0, 0.0, 0.0, 0],
        "regime": 3,  # before regime ids, "regime" counted shifts
    }
    restored = StreamState.__new__(StreamState)
    restored.__setstate__(old)
    restored.attach(config)
    track = restored.tracks[0]
    assert (restored.segment, track.regimes.regime, len(track.regimes.book)) == (3, 0, 0)


def test_a_snapshot_from_before_extreme_moves_takes_the_setting_and_continues() -> None:
    settings = load_settings(environ={}, **FIXTURE["settings"])
    config = stream_config(settings, tasks_of(settings))
    rng = np.random.default_rng(3)
    rets = rng.normal(0.0, 0.001, 1500)
    rets[1200] = -0.02  # a crash after the snapshot
    prices = 100 * np.exp(np.cumsum(rets))
    events = [
        MarketEvent(stream="X", ts_ms=1_700_000_000_000 + 1000 * i, price=float(p))
        for i, p in enumerate(prices)
    ]
    state = StreamState("X", "in", 2, config)
    for i in range(1000):
        assert state.on_event(events[i], i, Effects()) is None
        state.finish_batch({}, Effects())
    today = pickle.dumps(state)
    # What the code before extreme moves wrote: the same state, the detector without it.
    del state.detector.extreme
    before = pickle.dumps(state)
    assert b"ExtremeMove" in today and b"ExtremeMove" not in before

    outcomes = []
    for blob, threshold in ((today, 8.0), (before, 0.0)):
        restored = loads_pickled(blob)
        assert restored.detector.extreme.threshold == threshold  # off until attached
        restored.attach(config)
        assert restored.detector.extreme.threshold == settings.detection.extreme_z
        shifts = []
        for i in range(1000, 1500):
            out = Effects()
            assert restored.on_event(events[i], i, out) is None
            restored.finish_batch({}, out)
            shifts += [(s.offset, s.shift.triggers) for s in out.shifts]
        outcomes.append(shifts)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == (1200, ("extreme:returns",))


def test_every_moved_module_exists_where_the_map_says() -> None:
    import importlib

    for new in MOVED.values():
        importlib.import_module(new)
