"""After a shift: collecting one task's adaptation set, the first ``shots`` labelled examples
formed at or after the change began (the shift's ``change_index``: its detectors' estimated
location, else its first firing; examples formed before it describe the old regime). A
newer shift supersedes a collection that has not filled yet.

>>> from types import SimpleNamespace
>>> from adaptd.daemon.core.labels import Example
>>> collector = AdaptationSet()
>>> shift = SimpleNamespace(shift=SimpleNamespace(change_index=5))
>>> collector.start(shift)
>>> [collector.offer(Example((0.0,), 0.0, i, i, i), shots=2) is None for i in (4, 5)]
[True, True]
>>> done, rows = collector.offer(Example((0.0,), 0.0, 6, 6, 6), shots=2)
>>> done is shift, [r.index for r in rows], collector.collecting
(True, [5, 6], False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .labels import Example

if TYPE_CHECKING:
    from .effects import ShiftEvent

__all__ = ["AdaptationSet"]


class AdaptationSet:
    """The examples being collected for the adaptation after the latest shift."""

    __slots__ = ("rows", "shift")

    def __init__(self) -> None:
        self.shift: ShiftEvent | None = None
        self.rows: list[Example] = []

    @property
    def collecting(self) -> bool:
        return self.shift is not None

    def start(self, shift: ShiftEvent) -> None:
        """Start collecting for ``shift`` (dropping an unfinished collection)."""
        self.shift = shift
        self.rows = []

    def offer(self, example: Example, shots: int) -> tuple[ShiftEvent, list[Example]] | None:
        """Take an example if it belongs to the set; the shift and its ``shots`` examples once
        the set is full (collection then ends)."""
        shift = self.shift
        if shift is None or example.index < shift.shift.change_index:
            return None
        rows = self.rows
        rows.append(example)
        if len(rows) < shots:
            return None
        self.shift, self.rows = None, []
        return shift, rows
