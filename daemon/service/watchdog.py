"""Partitions that should advance and do not: records waiting (the broker's end offset is
past the next offset to process) while that offset has not moved for ``timeout_s``.

A stalled partition is a silent failure: the daemon looks alive, its commits stop, and the
records behind the stall wait. :class:`StallWatch` notices it from what the daemon already
knows (its position and the consumer's last high-water mark), so the service can log it
with its state, count it and fail ``/readyz``. A partition with nothing to read is never
stalled, however long it is idle.

>>> watch = StallWatch(timeout_s=30.0)
>>> watch.observe("p0", position=50, highwater=80, now=0.0)
False
>>> watch.observe("p0", position=50, highwater=80, now=31.0)  # waiting, not moving
True
>>> sorted(watch.stalled)
['p0']
>>> watch.observe("p0", position=51, highwater=80, now=32.0), sorted(watch.stalled)
(False, [])
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

__all__ = ["StallWatch"]


class StallWatch:
    """Per partition: since when its position has not moved while records wait."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        """0 turns the watch off."""
        self._since: dict[Hashable, tuple[int | None, float]] = {}
        self.stalled: set[Hashable] = set()

    def observe(
        self, tp: Hashable, position: int | None, highwater: int | None, now: float
    ) -> bool:
        """Record a partition's state at ``now``; True when it has just become stalled."""
        last = self._since.get(tp)
        waiting = position is not None and highwater is not None and highwater > position
        if not waiting:
            self._since.pop(tp, None)
            self.stalled.discard(tp)
            return False
        if last is None or last[0] != position:  # waiting from now on, or moved
            self._since[tp] = (position, now)
            self.stalled.discard(tp)
            return False
        if self.timeout_s <= 0 or tp in self.stalled or now - last[1] < self.timeout_s:
            return False
        self.stalled.add(tp)
        return True

    def stalled_for(self, tp: Hashable, now: float) -> float:
        """Seconds the partition has waited without moving (0 when it is not stalled)."""
        last = self._since.get(tp)
        return 0.0 if last is None or tp not in self.stalled else now - last[1]

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Partitions no longer owned."""
        for tp in tps:
            self._since.pop(tp, None)
            self.stalled.discard(tp)
