"""Change-point detectors behind one small protocol (:mod:`.protocol`), one file each.

Each takes one value at a time and answers with an :class:`~.protocol.Alarm` (when the
change is believed to have happened, not only that it has) or ``None``. They are pure
numpy and Python: no I/O, no torch, and their state is stored with the stream's snapshot.
"""

from .protocol import Alarm, ChangeDetector

__all__ = ["Alarm", "ChangeDetector"]
