"""How ``legacy_stream.pickle.z`` and ``legacy_stream.json`` were made (test_snapshot.py reads
them). Run it with the code of commit 3680ff8, before the core moved and before policy tasks:

    git worktree add /tmp/old 3680ff8 && make -C /tmp/old setup
    /tmp/old/.venv/bin/python tests/daemon/core/data/make_legacy_stream.py tests/daemon/core/data

It feeds one stream until a request is in flight and an adaptation set is being collected,
snapshots it as the daemon does (zlib of the pickle), and records what the stream does with
the rest of the events.
"""

import base64
import json
import pickle
import sys
import zlib
from pathlib import Path

import numpy as np

from adaptd.adapters.serving import NumpyPolicy
from adaptd.daemon.effects import Effects  # type: ignore[import-not-found]
from adaptd.daemon.features import feature_names  # type: ignore[import-not-found]
from adaptd.daemon.schema import MarketEvent  # type: ignore[import-not-found]
from adaptd.daemon.settings import load_settings  # type: ignore[import-not-found]
from adaptd.daemon.stream import StreamConfig, StreamState  # type: ignore[import-not-found]
from adaptd.replay.episode import encode_episode

SETTINGS = {
    "features": {"momentum_horizons": [5, 20], "warmup_events": 20, "label_horizon": 3},
    "detection": {"warmup_events": 100, "cooldown_events": 50},
    "adaptation": {"shots": 12, "query_size": 4},
    "replay": {"episode_size": 16},
}
SEED, N, FIRST_OFFSET = 7, 2000, 100
SEGMENTS = [(0.0, 0.001), (0.003, 0.004), (0.0, 0.001), (-0.002, 0.002)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def weights(d: int, seed: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    return {
        "layers.0.weight": g.normal(size=(4, d)).astype(np.float32),
        "layers.0.bias": np.zeros(4, np.float32),
        "layers.2.weight": g.normal(size=(1, 4)).astype(np.float32) * 0.1,
        "layers.2.bias": np.zeros(1, np.float32),
    }


def view(out):
    return {
        "shifts": [s.id for s in out.shifts],
        "episodes": [b64(encode_episode(e)) for e in out.episodes],
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
        ],
        "regimes": [[m.regime_id, m.known] for _, m in out.regimes],
        "examples": out.examples,
        "firings": sorted([[k[0], k[1], v] for k, v in out.firings.items()]),
    }


def main(folder: Path) -> None:
    settings = load_settings(environ={}, **SETTINGS)
    config = StreamConfig(settings, feature_names(settings.features))
    rng = np.random.default_rng(SEED)
    rets = [rng.normal(*SEGMENTS[min(i // 500, 3)]) for i in range(N)]
    prices = 100 * np.exp(np.cumsum(rets))
    events = [
        MarketEvent(stream="X", ts_ms=1_700_000_000_000 + 1000 * i, price=float(p))
        for i, p in enumerate(prices)
    ]
    d = len(config.feature_names)
    default = NumpyPolicy.from_params(weights(d, 0))
    state = StreamState("X", "in", 2, config)

    def feed(lo: int, hi: int, batch: int = 10) -> list:
        outs = []
        for b in range(lo, hi, batch):
            out = Effects()
            for i in range(b, min(hi, b + batch)):
                assert state.on_event(events[i], FIRST_OFFSET + i, out) is None
                out.processed += 1
            state.finish_batch(default, out)
            outs.append(out)
        return outs

    first = [r for o in feed(0, 1100) for r in o.requests]
    state.adopt(1, weights(d, 1), "tanh", regime=first[0].regime.regime_id)
    state.complete(first[0].id)
    cut = 1100  # snapshot while an adaptation set is being collected, a request in flight
    while not (state._collect_shift is not None and state._collect and state.pending):
        feed(cut, cut + 1, batch=1)
        cut += 1
    blob = zlib.compress(pickle.dumps(state, protocol=5), 1)
    at_snapshot = {
        "pending": state.pending.id,
        "queued": None if state.queued is None else state.queued.id,
        "collecting": True,
        "collected": len(state._collect),
        "episode_rows": len(state._episode),
        "regime_rows": len(state._regime_rows),
        "labeler_pending": state.labeler.pending,
        "index": state.index,
        "segment": state.segment,
        "regime": state.regime,
        "policy_version": state.policy_version,
        "preq": list(state.preq),
    }
    rest = feed(cut, N)
    handed = state.complete(state.pending.id)
    fixture = {
        "settings": SETTINGS,
        "seed": SEED,
        "segments": SEGMENTS,
        "n": N,
        "cut": cut,
        "first_offset": FIRST_OFFSET,
        "default_weights_seed": 0,
        "at_snapshot": at_snapshot,
        "after": [view(o) for o in rest],
        "preq_after": list(state.preq),
        "handed": [handed.id, handed.parent_version, b64(handed.support_x.tobytes())],
    }
    (folder / "legacy_stream.pickle.z").write_bytes(blob)
    (folder / "legacy_stream.json").write_text(json.dumps(fixture, indent=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
