"""An episode from one task's labelled examples: the stream cuts them at ``replay.episode_size``
examples and at every shift, so every labelled example lands in exactly one episode (even a
single one buffered when a shift cuts it). An episode is tagged with the stream's segment and
the regime its examples were classified into when it is cut.

>>> from adaptd.daemon.core.labels import Example
>>> rows = [Example((float(i),), 0.5, i, 10 + i, i) for i in range(3)]
>>> ep = episode_of(rows, stream="X", topic="in", partition=0, segment=1, regime=0,
...                 feature_names=("a",))
>>> ep.id, ep.n
('in:0:X:10-12', 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptd.replay.episode import Episode

from .labels import Example

__all__ = ["episode_of"]


def episode_of(
    rows: Sequence[Example],
    *,
    stream: str,
    topic: str,
    partition: int,
    segment: int,
    regime: int,
    feature_names: tuple[str, ...],
) -> Episode:
    """The episode of consecutive labelled examples (at least one) of one stream."""
    return Episode.from_arrays(
        stream=stream,
        segment=segment,
        regime=regime,
        topic=topic,
        partition=partition,
        offsets=[e.offset for e in rows],
        ts_ms=[e.ts_ms for e in rows],
        x=np.array([e.x for e in rows], dtype=np.float32),
        y=np.array([e.y for e in rows], dtype=np.float32),
        feature_names=feature_names,
    )
