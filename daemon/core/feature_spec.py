"""What a stream's features are, apart from computing them: their parameters, names and
order, and the specification a published policy carries so that a subscriber can compute
them itself (:mod:`.features` computes them, event by event).

>>> from adaptd.daemon.config.settings import FeatureSettings
>>> feature_names(FeatureSettings(momentum_horizons=(5,)))
('ret_z', 'mean_fast_z', 'mean_slow_z', 'vol_ratio', 'mom_5_z', 'spread_z', 'volume_z')
"""

from __future__ import annotations

from typing import Any, Protocol

from .calendar import calendar_names, calendar_spec

__all__ = [
    "VOL_FLOOR",
    "FeatureParams",
    "alpha_of",
    "feature_names",
    "feature_spec",
    "horizons_of",
    "names_of",
]

VOL_FLOOR = 1e-8
"""Smallest volatility of log returns per event; a flat stream is scaled by this, not by 0."""


class FeatureParams(Protocol):
    """What the features are made with (the ``features`` settings section has these)."""

    @property
    def momentum_horizons(self) -> tuple[int, ...]:
        """Horizons, in events, of the momentum features."""
        ...

    @property
    def fast_halflife(self) -> float:
        """Half-life, in events, of the fast EW statistics."""
        ...

    @property
    def slow_halflife(self) -> float:
        """Half-life, in events, of the slow EW statistics."""
        ...

    @property
    def label_clip(self) -> float:
        """Features are clipped to +/- this value."""
        ...

    @property
    def warmup_events(self) -> int:
        """Events before the first feature vector."""
        ...

    @property
    def calendar(self) -> tuple[str, ...]:
        """Calendar features appended after the others (:mod:`.calendar`); empty for none."""
        ...


def alpha_of(halflife: float) -> float:
    """Weight of the newest observation in an EW average with this half-life (in events).

    >>> round(alpha_of(1.0), 3), round(alpha_of(10.0), 4)
    (0.5, 0.067)
    """
    if not halflife > 0:
        raise ValueError(f"halflife must be positive, got {halflife}")
    return 1.0 - 0.5 ** (1.0 / halflife)


def feature_names(settings: FeatureParams) -> tuple[str, ...]:
    """The names of the feature vector's entries, in order."""
    return names_of(horizons_of(settings), calendar_names(settings.calendar))


def names_of(horizons: tuple[int, ...], calendar: tuple[str, ...]) -> tuple[str, ...]:
    return (
        "ret_z",
        "mean_fast_z",
        "mean_slow_z",
        "vol_ratio",
        *(f"mom_{h}_z" for h in horizons),
        "spread_z",
        "volume_z",
        *calendar,
    )


def feature_spec(settings: FeatureParams) -> dict[str, Any]:
    """A JSON-serialisable description of the features, for published policies (the task
    adds its label and narrows ``names`` to the features it reads)."""
    return {
        "version": 1,
        "names": list(feature_names(settings)),
        "momentum_horizons": list(settings.momentum_horizons),
        "fast_halflife": settings.fast_halflife,
        "slow_halflife": settings.slow_halflife,
        "clip": settings.label_clip,
        "warmup_events": settings.warmup_events,
        "vol": (
            "slow EW root mean square of log returns (bias-safe: a plain mean until the EW "
            f"weight takes over), floored at {VOL_FLOOR}; features at t are scaled by vol_(t-1)"
        ),
        **calendar_spec(settings.calendar),
    }


def horizons_of(settings: FeatureParams) -> tuple[int, ...]:
    horizons = tuple(settings.momentum_horizons)
    if len(set(horizons)) != len(horizons):
        raise ValueError(f"momentum_horizons must be distinct, got {horizons}")
    return horizons
