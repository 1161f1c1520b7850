"""Regime-shift detection for one stream: river detectors on normalised channels, with
warm-up, debounce and cool-down.

Page-Hinkley is not scale-free (its ``delta`` and ``threshold`` are in input units) and
ADWIN is nearly so, so every channel is a unit-scale z and one set of thresholds fits
BTC, Brent and Apple alike:

- ``returns``: ``z = ret / scale``, the log return in units of a *long-run* volatility
  ``scale`` known before this event, clipped to +/- ``INPUT_CLIP``.
- ``volatility``: ``|z|``, same scale and clip: ~0.8 in a steady regime, up or down with
  volatility. Absolute rather than squared values keep one outlier from dominating.
- ``error``: ``sqrt(error)`` of the squared standardised prediction error, clipped the
  same way (also ~0.8 on average); non-finite errors are skipped.

``scale`` is the detector's own EW root mean square of returns with a long half-life
(``scale_halflife`` events, seeded as a plain mean of the first returns), updated with
returns winsorised at ``INPUT_CLIP * scale``. A short-memory volatility, such as the
features' ``vol``, would absorb a volatility shift within a few dozen events and hide it;
the winsorising keeps a single crash from inflating the scale and masking what follows.

After a shift from the market channels the detector measures the new regime during the
cool-down; at its end the scale restarts from that measurement and every detector restarts,
so the new regime becomes the baseline instead of the slowly adapting scale reading as a
second shift. A shift from the error channel alone restarts only the error channel's
detectors (see :class:`ShiftDetector`).

A single return of ``extreme_z`` long-run standard deviations or more is a shift at once
(trigger ``extreme:returns``, :mod:`.extreme`), outside the warm-up and the cool-down but
without waiting for debounce or ``min_detectors``; the cool-down and restart then follow.

Page-Hinkley's ``alpha < 1`` decays its cumulative sums but not their running extremes, so
its false-alarm rate grows with the time since its last reset. ``ph_alpha=1.0``,
``ph_delta=0.1`` and ``ph_threshold=30`` (used below) keep false alarms near 0.1 per 1000
events of a steady Gaussian or Student-t(3) stream.

>>> import random
>>> from adaptd.daemon.config.settings import DetectionSettings
>>> settings = DetectionSettings(ph_threshold=30.0, ph_delta=0.1, ph_alpha=1.0)
>>> rng, detector, found = random.Random(0), ShiftDetector(settings), []
>>> for i in range(2000):
...     sigma = 0.01 if i < 1000 else 0.03  # volatility triples at event 1000
...     shift = detector.update(i, rng.gauss(0.0, sigma), sigma)
...     if shift is not None:
...         found.append((shift.index, shift.triggers))
>>> found
[(1019, ('page_hinkley:volatility',))]
"""

from __future__ import annotations

import math
from collections import deque
from types import SimpleNamespace

import numpy as np

from .detectors import Alarm, ChangeDetector
from .detectors.confirm import Confirmation
from .detectors.factory import DETECTORS, DetectorParams, make_detector
from .detectors.river import RiverDetector, alarm_estimates
from .extreme import ExtremeMove
from .shift import DetectionParams, Shift

# Shift lived here before: snapshots pickled then name it by this module.
__all__ = ["INPUT_CLIP", "DetectionParams", "Shift", "ShiftDetector"]

INPUT_CLIP = 8.0
"""Channel inputs are clipped to +/- this many (long-run) standard deviations."""

_CHANNELS = ("returns", "volatility", "error")


class ShiftDetector:
    """Detect regime shifts in one stream.

    One river detector instance per enabled (detector, channel) pair. Firings during the
    first ``warmup_events`` indices are ignored (the detectors still learn). A shift is
    confirmed once ``min_detectors`` distinct pairs fired within ``debounce_events``
    indices (immediately with one); firings are then absorbed for ``cooldown_events``
    indices. An extreme move (:mod:`.extreme`) confirms on its own. ``firing_counts``
    counts every raw firing, ignored and absorbed ones too (extreme moves once there is one).

    The channels are fused without blinding each other. A shift from the market channels
    (any trigger on ``returns`` or ``volatility``, or an extreme move) puts every channel in
    the cool-down and restarts every detector at its end, the scale from the new regime: the
    market changed and a new policy is coming, so the error channel's baseline must be
    learnt again. A shift from the ``error`` channel alone (the live policy failing while
    the market channels saw nothing) cools and restarts the error channel only: the market
    channels keep watching, and a market change inside that cool-down is a shift of its own.

    With ``confirm`` on, a shift from the market channels is *held* until ``confirm_after``
    events have followed its estimated location, then returned with its index moved there;
    :meth:`take_window` hands over the scaled returns it is to be confirmed on (the last
    ``confirm_window`` events, back to the previous shift at most), for a
    :class:`~.detectors.confirm.Confirmation` to relocate or retract it off the event loop.
    Shifts from the error channel and extreme moves are not held. (No other shift can come
    while one is held: the cool-down, at least ``confirm_after`` long, absorbs them.)

    Indices are per-stream event indices (0 for the stream's first event), consecutive
    for :meth:`update` and non-decreasing across it and :meth:`update_error`.

    Parameters
    ----------
    settings
        Detectors, channels, their parameters, and the warm-up/debounce/cool-down lengths.
    scale_halflife
        Half-life, in events, of the long-run volatility that normalises the channels.
    """

    __slots__ = (
        "_a_scale",
        "_by_channel",
        "_cool_n",
        "_cool_sum",
        "_cooldown_until",
        "_error_cooldown_until",
        "_error_rearm",
        "_held",
        "_n",
        "_rearm",
        "_recent",
        "_released",
        "_var",
        "_window",
        "channels",
        "confirm_after",
        "confirmation",
        "cooldown_events",
        "debounce_events",
        "detectors",
        "extreme",
        "firing_counts",
        "min_detectors",
        "params",
        "scale_halflife",
        "shifts",
        "skip",
        "warmup_events",
    )

    def __init__(self, settings: DetectionParams, scale_halflife: float = 1000.0) -> None:
        self.detectors = tuple(dict.fromkeys(settings.detectors))
        self.channels = tuple(dict.fromkeys(settings.channels))
        self.skip = frozenset(settings.skip)
        for name in self.detectors:
            if name not in DETECTORS:
                raise ValueError(f"unknown detector {name!r}")
        for name in self.channels:
            if name not in _CHANNELS:
                raise ValueError(f"unknown channel {name!r}")
        if not scale_halflife > 0:
            raise ValueError(f"scale_halflife must be positive, got {scale_halflife!r}")
        self.params = DetectorParams.of(settings)
        self.warmup_events = settings.warmup_events
        self.debounce_events = settings.debounce_events
        self.min_detectors = settings.min_detectors
        self.cooldown_events = settings.cooldown_events
        self.extreme = ExtremeMove(settings.extreme_z)
        self.scale_halflife = float(scale_halflife)
        self._a_scale = 1.0 - 0.5 ** (1.0 / self.scale_halflife)
        self._held: Shift | None = None
        self._released: tuple[np.ndarray, int] | None = None
        self.confirm_with(settings)
        self._reset()

    def confirm_with(self, settings: DetectionParams) -> None:
        """Confirm shifts as ``settings`` say from now on (the window so far is kept when the
        length stays; a held shift is released at the next event when confirmation is off)."""
        if not settings.confirm:
            self.confirmation = None
            self.confirm_after = 0
            self._recent: deque[float] | None = None
            self._released = None
            return
        self.confirmation = Confirmation(settings.confirm_window, settings.confirm_penalty)
        self.confirm_after = settings.confirm_after
        recent = getattr(self, "_recent", None)
        if recent is None or recent.maxlen != settings.confirm_window:
            self._recent = deque(recent or (), maxlen=settings.confirm_window)

    def take_window(self) -> tuple[np.ndarray, int] | None:
        """The scaled returns a shift just returned by :meth:`update` is to be confirmed on,
        and the index of the first (None when it needs no confirmation); once."""
        released, self._released = self._released, None
        return released

    def _reset(self) -> None:
        self.firing_counts: dict[tuple[str, str], int] = {}
        self.shifts = 0
        self._by_channel: dict[str, tuple[tuple[tuple[str, str], ChangeDetector], ...]] = {}
        for channel in _CHANNELS:
            pairs = []
            if channel in self.channels:
                for name in self.detectors:
                    if f"{name}:{channel}" in self.skip:
                        continue
                    pairs.append(((name, channel), self._new_detector(name)))
                    self.firing_counts[(name, channel)] = 0
            self._by_channel[channel] = tuple(pairs)
        self._n = 0  # returns seen by the scale estimate
        self._var = 0.0  # long-run mean square return
        self._cooldown_until = -1
        self._rearm = False  # in a cool-down: measure the new regime, restart at its end
        self._error_cooldown_until = -1  # the error channel's own, after an error shift
        self._error_rearm = False
        self._cool_sum = 0.0
        self._cool_n = 0
        # firings in the debounce window: (index, "detector:channel", stats, location)
        self._window: list[tuple[int, str, dict[str, float], int]] = []

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        # Snapshots from before the detector protocol hold river's detectors bare, their
        # parameters one by one and firings without a location.
        values = dict(state[1])
        if "params" not in values:
            values["params"] = DetectorParams.of(SimpleNamespace(**values))
        # Snapshots from before confirmation: none (the stream's settings apply on attach).
        for name in ("_held", "_recent", "_released", "confirmation"):
            values.setdefault(name, None)
        values.setdefault("confirm_after", 0)
        # ... and from before fused channels: the one cool-down was every channel's.
        values.setdefault("_error_cooldown_until", values.get("_cooldown_until", -1))
        values.setdefault("_error_rearm", False)
        for name in self.__slots__:
            if name in values:
                setattr(self, name, values[name])
        for channel, pairs in self._by_channel.items():
            self._by_channel[channel] = tuple(
                (pair, d if isinstance(d, ChangeDetector) else RiverDetector(pair[0], d))
                for pair, d in pairs
            )
        self._window = [w if len(w) == 4 else (*w, w[0]) for w in self._window]

    def _new_detector(self, name: str) -> ChangeDetector:
        return make_detector(name, self.params)

    def update(self, index: int, ret: float, vol: float) -> Shift | None:
        """Feed one event's log return and the stream's current volatility (> 0), which
        serves as the scale only until the long-run estimate has seen a non-zero return."""
        if self._rearm and index > self._cooldown_until:
            self._restart()
        elif self._error_rearm and index > self._error_cooldown_until:
            self._restart_error()
        var = self._var
        scale = math.sqrt(var) if var > 0.0 else vol
        if not scale > 0.0:
            return None
        z = ret / scale
        fired: list[_Firing] | None = None
        if self.extreme.update(z).drift_detected:
            fired = [(ExtremeMove.pair, Alarm(index, index, abs(z)), None)]
        if not -INPUT_CLIP < z < INPUT_CLIP:
            z = INPUT_CLIP if z > 0.0 else -INPUT_CLIP
        recent = self._recent
        if recent is not None:
            recent.append(z)
        n = self._n + 1
        self._n = n
        a = self._a_scale if n * self._a_scale >= 1.0 else 1.0 / n
        r2 = z * z * var if var > 0.0 else ret * ret  # winsorised at INPUT_CLIP * scale
        self._var = var + a * (r2 - var)
        if self._rearm:
            self._cool_sum += r2
            self._cool_n += 1

        # The per-event path: loops written out rather than a helper call per channel.
        for pair, detector in self._by_channel["returns"]:
            alarm = detector.update(z)
            if alarm is not None:
                fired = (
                    [(pair, alarm, detector)]
                    if fired is None
                    else [*fired, (pair, alarm, detector)]
                )
        if z < 0.0:
            z = -z
        for pair, detector in self._by_channel["volatility"]:
            alarm = detector.update(z)
            if alarm is not None:
                fired = (
                    [(pair, alarm, detector)]
                    if fired is None
                    else [*fired, (pair, alarm, detector)]
                )
        if fired is not None:
            shift = self._fired(index, fired, {"returns.z": ret / scale, "scale": scale})
            if shift is not None:
                if recent is None or _EXTREME in shift.triggers:
                    return shift
                self._held = shift
        held = self._held
        if held is not None and (recent is None or index - held.location + 1 >= self.confirm_after):
            return self._release(held, index)
        return None

    def _release(self, held: Shift, index: int) -> Shift:
        self._held = None
        recent = self._recent
        if recent is not None:
            # Back to the held shift's previous one at most: its window was cleared there.
            self._released = (np.fromiter(recent, np.float64), index + 1 - len(recent))
            keep = index - held.location + 1
            while len(recent) > keep:
                recent.popleft()
        return held._replace(index=index)

    def update_error(self, index: int, error: float) -> Shift | None:
        """Feed the live policy's squared standardised prediction error (~1 on average)."""
        if not 0.0 <= error < math.inf:
            return None
        if self._error_rearm and index > self._error_cooldown_until:
            self._restart_error()
        e = math.sqrt(error)
        if e > INPUT_CLIP:
            e = INPUT_CLIP
        fired = _feed(self._by_channel["error"], e, index, None)
        if fired is None:
            return None
        return self._fired(index, fired, {"error.abs_z": e})

    def _restart(self) -> None:
        """End of a cool-down: the new regime becomes the baseline."""
        if self._cool_n > 0 and self._cool_sum > 0.0:
            self._var = self._cool_sum / self._cool_n
            self._n = self._cool_n  # keep it a plain mean until the EW weight takes over
        for channel, pairs in self._by_channel.items():
            self._by_channel[channel] = tuple((p, self._new_detector(p[0])) for p, _ in pairs)
        self._rearm = False
        self._error_rearm = False

    def _restart_error(self) -> None:
        """End of an error shift's cool-down: the error channel learns its baseline again."""
        pairs = self._by_channel["error"]
        self._by_channel["error"] = tuple((p, self._new_detector(p[0])) for p, _ in pairs)
        self._error_rearm = False

    def _fired(self, index: int, fired: list[_Firing], inputs: dict[str, float]) -> Shift | None:
        counts = self.firing_counts
        for pair, _, _ in fired:
            counts[pair] = counts.get(pair, 0) + 1
        errors_only = all(pair[1] == "error" for pair, _, _ in fired)
        cooling = self._error_cooldown_until if errors_only else self._cooldown_until
        if index < self.warmup_events or index <= cooling:
            return None
        window = self._window
        oldest = index - self.debounce_events
        window[:] = [entry for entry in window if entry[0] > oldest]
        for pair, alarm, detector in fired:
            name = f"{pair[0]}:{pair[1]}"
            # The detector counts its own updates: its delay, in events, places the change.
            location = index - (alarm.index - alarm.location)
            window.append(
                (index, name, {**inputs, **alarm_estimates(name, alarm, detector)}, location)
            )
        triggers = tuple(dict.fromkeys(name for _, name, _, _ in window))
        # An extreme move confirms on its own, with what fired before it in the window.
        if len(triggers) < self.min_detectors and not any(
            pair == ExtremeMove.pair for pair, _, _ in fired
        ):
            return None
        stats: dict[str, float] = {}
        for _, _, entry_stats, _ in window:
            stats.update(entry_stats)
        first_index = window[0][0]
        location = min(max(0, entry[3]) for entry in window)
        window.clear()
        self.shifts += 1
        until = index + self.cooldown_events
        self._error_cooldown_until = max(self._error_cooldown_until, until)
        if all(name.endswith(":error") for name in triggers):
            self._error_rearm = True
        else:
            self._cooldown_until = until
            self._rearm = True
            self._cool_sum = 0.0
            self._cool_n = 0
        return Shift(index, first_index, triggers, stats, location)


_EXTREME = ":".join(ExtremeMove.pair)

_Firing = tuple[tuple[str, str], Alarm, ChangeDetector | None]
"""A (detector, channel) pair that fired, its alarm, and the detector (None: extreme move)."""


def _feed(
    pairs: tuple[tuple[tuple[str, str], ChangeDetector], ...],
    x: float,
    index: int,
    fired: list[_Firing] | None,
) -> list[_Firing] | None:
    """Give ``x`` to every detector of a channel; the firings so far, with theirs."""
    for pair, detector in pairs:
        alarm = detector.update(x)
        if alarm is not None:
            entry = (pair, alarm, detector)
            fired = [entry] if fired is None else [*fired, entry]
    return fired
