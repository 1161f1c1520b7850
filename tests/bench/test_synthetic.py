"""The ingest benchmark's synthetic market: regimes at the same events in every stream, or
staggered across streams."""

from __future__ import annotations

import numpy as np

from bench.synthetic import regime_path, synthetic_events


def _changes(vol: np.ndarray, drift: np.ndarray) -> set[int]:
    return set((np.flatnonzero((np.diff(vol) != 0) | (np.diff(drift) != 0)) + 1).tolist())


def test_regimes_change_together_or_staggered_across_streams() -> None:
    rng = np.random.default_rng(3)
    for s in range(4):
        drift, vol = regime_path(s, 4, 1000, 200, rng)
        assert len(vol) == 1000 and _changes(vol, drift) <= {200, 400, 600, 800}
        drift, vol = regime_path(s, 4, 1000, 200, rng, stagger=True)
        lag = 200 * s // 4
        assert len(vol) == 1000
        assert _changes(vol, drift) <= {200 * k - lag for k in range(1, 6)}
        assert _changes(vol, drift)  # the regimes do change


def test_events_interleave_the_streams_in_time_order() -> None:
    events = synthetic_events(3, 50, regime_len=20, stagger=True)
    assert len(events) == 150
    assert [k for k, _ in events[:3]] == [b"SYN-000", b"SYN-001", b"SYN-002"]
