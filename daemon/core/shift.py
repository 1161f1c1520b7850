"""What a regime shift is, and what a stream's shift detection is made with: shared by the
detector (:mod:`.detection`), the stream state, the effects and the records that publish it.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

__all__ = ["DetectionParams", "Shift"]


class DetectionParams(Protocol):
    """What the detector is made with (the ``detection`` settings section has these; see
    docs/configuration.md for each)."""

    @property
    def detectors(self) -> tuple[str, ...]: ...
    @property
    def channels(self) -> tuple[str, ...]: ...
    @property
    def skip(self) -> tuple[str, ...]: ...
    @property
    def adwin_delta(self) -> float: ...
    @property
    def ph_threshold(self) -> float: ...
    @property
    def ph_delta(self) -> float: ...
    @property
    def ph_alpha(self) -> float: ...
    @property
    def cusum_k(self) -> float: ...
    @property
    def cusum_false_alarms_per_10k(self) -> float: ...
    @property
    def focus_false_alarms_per_10k(self) -> float: ...
    @property
    def bocpd_expected_run(self) -> float: ...
    @property
    def bocpd_threshold(self) -> float: ...
    @property
    def resegment_penalty(self) -> float: ...
    @property
    def resegment_stable(self) -> int: ...
    @property
    def resegment_window(self) -> int: ...
    @property
    def resegment_trend_penalty(self) -> float | None: ...
    @property
    def warmup_events(self) -> int: ...
    @property
    def debounce_events(self) -> int: ...
    @property
    def min_detectors(self) -> int: ...
    @property
    def cooldown_events(self) -> int: ...
    @property
    def extreme_z(self) -> float: ...
    @property
    def confirm(self) -> bool: ...
    @property
    def confirm_window(self) -> int: ...
    @property
    def confirm_after(self) -> int: ...
    @property
    def confirm_penalty(self) -> float: ...
    def for_stream(self, stream: str) -> DetectionParams:
        """The parameters of one stream (per-stream settings over the shared ones)."""
        ...


class Shift(NamedTuple):
    """A confirmed regime shift."""

    index: int
    """Per-stream event index at confirmation."""
    first_index: int
    """Index of the first firing that counted towards it."""
    triggers: tuple[str, ...]
    """``"detector:channel"`` pairs that fired in the debounce window, first firing first
    (``"extreme:returns"`` for an extreme move, ahead of the detectors at its event)."""
    stats: dict[str, float]
    """Numbers at the firings: channel inputs, the scale, what the detectors estimated."""
    location: int = -1
    """Where the change is estimated to have begun: the earliest location the firings'
    detectors gave (an index, at most ``index``; -1 for shifts from before). A shift to be
    confirmed is relocated by its confirmation."""

    @property
    def change_index(self) -> int:
        """The estimated first index of the new regime (``first_index`` when unknown)."""
        return self.first_index if self.location < 0 else self.location
