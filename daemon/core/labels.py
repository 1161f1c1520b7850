"""Delayed labels: the example formed at event t is labelled when event t + H arrives.

The label is the forward log return over H events in units of the volatility known at t:
``y = clip((log_price[t+H] - log_price[t]) / (scale[t] * sqrt(H)), +/- clip)``.

>>> import math
>>> labeler = DelayedLabeler(horizon=2, clip=10.0)
>>> prices = [100.0, 101.0, 102.0, 99.0]
>>> for i, p in enumerate(prices):
...     example = labeler.push(i, math.log(p), (float(i),), 0.01, offset=40 + i, ts_ms=i)
...     if example is not None:
...         print(example.index, example.offset, round(example.y, 4))
0 40 1.4003
1 41 -1.4143
>>> labeler.pending
2
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple


class Example(NamedTuple):
    """A labelled example: features x formed at event ``index`` (its Kafka offset and
    event time), and the label y that matured H events later."""

    x: tuple[float, ...]
    y: float
    index: int
    offset: int
    ts_ms: int


_new_example = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


class DelayedLabeler:
    """Hold each stream's examples until their label horizon has passed.

    ``push`` is called for every event of the stream, with consecutive indices; events
    without features (x None, e.g. during warm-up) form no example. O(1) per event.

    Parameters
    ----------
    horizon
        H, the number of events between forming an example and its label.
    clip
        Labels are clipped to +/- this value.
    """

    __slots__ = ("_inv_sqrt_h", "_last_index", "_pending", "clip", "horizon")

    def __init__(self, horizon: int, clip: float) -> None:
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        if not clip > 0:
            raise ValueError(f"clip must be positive, got {clip!r}")
        self.horizon = horizon
        self.clip = float(clip)
        self._inv_sqrt_h = 1.0 / math.sqrt(horizon)
        self._reset()

    def _reset(self) -> None:
        # (index, log_price, x, 1 / (scale * sqrt(H)), offset, ts_ms) of examples awaiting labels
        self._pending: deque[tuple[int, float, tuple[float, ...], float, int, int]] = deque()
        self._last_index: int | None = None

    @property
    def pending(self) -> int:
        """Examples formed but not yet labelled."""
        return len(self._pending)

    def push(
        self,
        index: int,
        log_price: float,
        x: tuple[float, ...] | None,
        scale: float,
        offset: int,
        ts_ms: int,
    ) -> Example | None:
        """Record event ``index`` and return the example formed at ``index - H``, if any.

        ``scale`` is the volatility at this event (> 0; ``FeatureExtractor.vol`` after its
        update), used when this event's own example matures. Raises ValueError if
        ``index`` does not follow the previous one.
        """
        last = self._last_index
        if last is not None and index != last + 1:
            raise ValueError(f"index {index} does not follow the previous index {last}")
        self._last_index = index
        pending = self._pending
        example = None
        if pending and pending[0][0] == index - self.horizon:
            _, lp0, x0, inv0, offset0, ts0 = pending.popleft()
            y = (log_price - lp0) * inv0
            c = self.clip
            if not -c < y < c:
                y = c if y > 0.0 else -c
            example = _new_example(Example, (x0, y, index - self.horizon, offset0, ts0))
        if x is not None:
            if not scale > 0.0:
                raise ValueError(f"scale must be positive, got {scale!r} at index {index}")
            pending.append((index, log_price, x, self._inv_sqrt_h / scale, offset, ts_ms))
        return example
