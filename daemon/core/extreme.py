"""Extreme moves: one return far outside the stream's long-run scale is a regime shift at
once, without waiting for the detectors to confirm it.

ADWIN and Page-Hinkley need a run of changed inputs before they fire, and the market
channels clip their inputs at ``INPUT_CLIP``, so to them a crash is one large input among
many. :class:`ExtremeMove` flags the return itself: ``|ret| / scale`` at or
beyond ``threshold`` (the ``detection.extreme_z`` setting), with ``scale`` the detector's
long-run volatility known before the event. :class:`~.detection.ShiftDetector` turns the
flag into a shift at that event (trigger ``"extreme:returns"``), outside its warm-up and
cool-down but regardless of its debounce and ``min_detectors``, and then cools down and
restarts as after any shift.

A threshold of 0 turns extreme moves off (an environment variable cannot say ``None``). The
setting's default, 8, is where the channels already clip. Measured with the other defaults
on the 13 daily and hourly series of ``make bench-markets``, it takes shifts from 1.1 to 1.2
per 1000 events (6 would take them to 1.6); on a steady Student-t(3) stream, which the
detectors leave alone, it adds 0.9 per 1000 (6 would add 1.9).

>>> move = ExtremeMove(8.0)
>>> move.update(-0.09 / 0.01).drift_detected  # a 9 % fall when 1 % is usual
True
>>> move.update(3.0).drift_detected
False
>>> ExtremeMove(0.0).update(50.0).drift_detected  # off
False
"""

from __future__ import annotations

import math

__all__ = ["ExtremeMove"]


class ExtremeMove:
    """Flag a return of at least ``threshold`` long-run standard deviations, either way.

    Parameters
    ----------
    threshold
        In long-run standard deviations; 0 turns the check off.
    """

    __slots__ = ("_detected", "threshold")

    pair = ("extreme", "returns")
    """How its firings are counted and named, next to the detectors' (detector, channel)."""

    def __init__(self, threshold: float) -> None:
        if not (math.isfinite(threshold) and threshold >= 0.0):
            raise ValueError(
                "extreme_z must be 0 (off) or a positive, finite number of standard "
                f"deviations, got {threshold!r}"
            )
        self.threshold = float(threshold)
        self._detected = False

    def update(self, z: float) -> ExtremeMove:
        """Feed one return in units of the long-run scale (not clipped)."""
        t = self.threshold
        self._detected = t > 0.0 and not -t < z < t
        return self

    @property
    def drift_detected(self) -> bool:
        """Whether the last return fed was an extreme move."""
        return self._detected
