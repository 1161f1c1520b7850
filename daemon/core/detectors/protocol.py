"""The protocol every change-point detector follows.

A detector sees one value at a time, indexed from 0 by its own count of updates, and
answers with an :class:`Alarm` or ``None``. An alarm says both *when* the detector became
sure (``index``, the update that raised it) and *where* it believes the new segment starts
(``location`` <= ``index``): the run-length posterior's mode for BOCPD, the arg max of the
statistic for CUSUM-type detectors. The daemon uses the events since ``location`` as the
new regime's first examples, and benchmarks score ``location`` against annotations.

After an alarm a detector carries on by itself (it restarts from ``location`` or from the
alarm, as its docstring says); :meth:`ChangeDetector.reset` forgets everything. State is
plain Python and numpy, so a detector is stored with the stream's snapshot
(:mod:`..state_format`).

A :class:`VectorDetector` is the same contract for a stream of feature vectors: one vector
in (of the dimension the detector was built for, or learnt from its first vector), an
:class:`Alarm` or ``None`` out, indexed by its own count of vectors. It sees what no set of
per-coordinate :class:`ChangeDetector` can, a change in how the coordinates move together
(their correlation, say) while each one's own distribution stays the same. (``isinstance``
checks a runtime-checkable protocol's names, not its types, so it cannot tell the two
kinds apart: which one a detector is, is for its documentation to say.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["Alarm", "ChangeDetector", "VectorDetector"]


class Alarm(NamedTuple):
    """A detected change."""

    index: int
    """The update (0-based) at which the detector raised the alarm."""
    location: int
    """The estimated first index of the new segment (``<= index``)."""
    score: float
    """How sure the detector was: its statistic at the alarm, in its own units (a posterior
    probability for BOCPD, the CUSUM statistic for CUSUM)."""


@runtime_checkable
class ChangeDetector(Protocol):
    """One value in, an alarm or ``None`` out."""

    name: str

    def update(self, x: float) -> Alarm | None:
        """Take the next value; an :class:`Alarm` when a change is detected."""
        ...

    def reset(self) -> None:
        """Forget everything seen (the next update is index 0 again)."""
        ...


@runtime_checkable
class VectorDetector(Protocol):
    """One feature vector in, an alarm or ``None`` out: :class:`ChangeDetector` for vectors."""

    name: str

    def update(self, x: Sequence[float] | np.ndarray) -> Alarm | None:
        """Take the next vector; an :class:`Alarm` when a change is detected."""
        ...

    def reset(self) -> None:
        """Forget everything seen (the next update is index 0 again)."""
        ...
