"""An episode made from one task's consecutive labelled examples."""

from __future__ import annotations

import numpy as np

from adaptd.daemon.core.episodes import episode_of
from adaptd.daemon.core.labels import Example


def test_the_episode_keeps_the_examples_their_source_and_the_regime() -> None:
    rows = [Example((float(i), -float(i)), 0.5 * i, i, 40 + i, 1000 + i) for i in range(4)]
    ep = episode_of(
        rows, stream="X", topic="in", partition=3, segment=2, regime=7, feature_names=("a", "b")
    )
    x, y = ep.arrays()
    np.testing.assert_array_equal(x, np.array([e.x for e in rows], dtype=np.float32))
    np.testing.assert_array_equal(y, np.array([e.y for e in rows], dtype=np.float32))
    assert (ep.first_offset, ep.last_offset, ep.first_ts_ms, ep.last_ts_ms) == (40, 43, 1000, 1003)
    assert (ep.segment, ep.regime, ep.partition, ep.feature_names) == (2, 7, 3, ("a", "b"))
