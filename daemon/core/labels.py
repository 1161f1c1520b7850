"""Delayed labels: the example formed at event t is labelled when event t + H arrives.

What the label is belongs to the policy task (its :class:`~.tasks.protocol.LabelRule`): the
labeler holds each example with the rule's ``anchor`` from the event it was formed at, and
H events later returns it with ``y = rule.label(anchor, tick)``. For the return task that is
the forward log return over H events in units of the volatility known at t:

>>> import math
>>> from types import SimpleNamespace
>>> from adaptd.daemon.core.tasks.returns import ForwardReturnRule
>>> labeler = DelayedLabeler(ForwardReturnRule(horizon=2, clip=10.0))
>>> prices = [100.0, 101.0, 102.0, 99.0]
>>> for i, p in enumerate(prices):
...     tick = SimpleNamespace(log_price=math.log(p), vol=0.01)
...     example = labeler.push(i, tick, (float(i),), offset=40 + i, ts_ms=i)
...     if example is not None:
...         print(example.index, example.offset, round(example.y, 4))
0 40 1.4003
1 41 -1.4143
>>> labeler.pending
2
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from adaptd.adapters.checks import positive_int

from .tasks.protocol import LabelRule, Tick
from .tasks.returns import ForwardReturnRule


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
    rule
        The task's label rule: its ``horizon`` (H >= 1), ``anchor`` and ``label``.
    """

    __slots__ = ("_anchor", "_extra", "_label", "_last_index", "_pending", "horizon", "rule")

    def __init__(self, rule: LabelRule) -> None:
        positive_int("horizon", rule.horizon)
        self._bind(rule)
        self._reset()

    def _bind(self, rule: LabelRule) -> None:
        self.rule = rule
        self.horizon = rule.horizon
        # Bound once: two method look-ups per event are measurable on the hot path.
        self._anchor = rule.anchor
        self._label = rule.label
        self._extra = rule.extra if getattr(rule, "inputs", ()) else None  # type: ignore[attr-defined]

    def _reset(self) -> None:
        # (index, anchor, x, offset, ts_ms) of examples awaiting labels
        self._pending: deque[tuple[int, Any, tuple[float, ...], int, int]] = deque()
        self._last_index: int | None = None

    @property
    def pending(self) -> int:
        """Examples formed but not yet labelled."""
        return len(self._pending)

    def push(
        self, index: int, tick: Tick, x: tuple[float, ...] | None, offset: int, ts_ms: int
    ) -> Example | None:
        """Record event ``index`` and return the example formed at ``index - H``, if any.

        ``tick`` is the stream after this event (the feature extractor). A rule with
        ``inputs`` appends their values (its ``extra()``) to ``x``. Raises ValueError if
        ``index`` does not follow the previous one.
        """
        last = self._last_index
        if last is not None and index != last + 1:
            raise ValueError(f"index {index} does not follow the previous index {last}")
        self._last_index = index
        pending = self._pending
        example = None
        if pending and pending[0][0] == index - self.horizon:
            _, anchor, x0, offset0, ts0 = pending.popleft()
            y = self._label(anchor, tick)
            example = _new_example(Example, (x0, y, index - self.horizon, offset0, ts0))
        if x is not None:
            anchor = self._anchor(tick)
            extra = self._extra
            if extra is not None:  # the rule's own inputs, known once it has anchored
                x = (*x, *extra())
            pending.append((index, anchor, x, offset, ts_ms))
        return example

    def formed_at(self, index: int) -> tuple[float, ...] | None:
        """The features of the example formed at event ``index``, if it is the latest one
        and still awaits its label (None during warm-up)."""
        pending = self._pending
        return pending[-1][2] if pending and pending[-1][0] == index else None

    def __getstate__(self) -> dict[str, Any]:
        # Bound methods of the rule are rebuilt, not pickled.
        return {"rule": self.rule, "_pending": self._pending, "_last_index": self._last_index}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # pickled before policy tasks: (None, slots)
            state = _legacy_state(state[1])
        self._bind(state["rule"])
        self._pending = state["_pending"]
        self._last_index = state["_last_index"]


def _legacy_state(slots: dict[str, Any]) -> dict[str, Any]:
    """The state of a labeler pickled before policy tasks, when it made the return task's
    labels itself: its pending ``(index, log_price, x, 1 / (vol*sqrt(H)), offset, ts_ms)``
    are the return rule's anchors ``(log_price, 1 / (vol*sqrt(H)))``."""
    pending = deque((i, (lp, inv), x, o, t) for i, lp, x, inv, o, t in slots["_pending"])
    rule = ForwardReturnRule(slots["horizon"], slots["clip"])
    return {"rule": rule, "_pending": pending, "_last_index": slots["_last_index"]}
