"""Few-shot market-regime data: price series cut into regimes, windows of returns as examples.

A *class* is a regime segment of one price series (the rows between two change points); an
*example* is a fixed-length window of return features from inside that segment. N-way K-shot
episodes over such data (``EpisodeSampler``) ask a learner to tell apart windows of segments
it has never seen, from K windows of each.

Change points come from the annotations of the Turing change-point benchmark that river
ships (mapped to rows by ``adaptd.adapters.tasks.series``), or from an offline detector
(``binary_segmentation``: Gaussian change in mean and variance of the log returns, BIC-like
penalty) in regions nobody annotated, or everywhere (``changes="detected"``).

Rows and returns: ``r[t] = log(p[t] / p[t-1])`` (``r[0]`` undefined). A change point ``c``
means the new regime starts at row ``c``; segment ``[a, b)`` owns the returns
``r[a+1] .. r[b-1]`` (the jump ``r[a]`` across the change point belongs to neither side).

Features of the window ending at row ``e`` (``w = window``, ``L = lookback``), ``w + 5``
numbers, all free of the price level:

==============  ==========================================================================
``z_1 .. z_w``  ``r[e-w+1] .. r[e]`` divided by ``σ``, clipped to ``[-10, 10]``, where
                ``σ = sqrt(mean(r[e-w-L+1 .. e-w] ** 2))``: the root mean square of the
                ``L`` returns *before* the window (past data only; they may lie in the
                previous segment, as they would for a live detector)
``vol_ratio``   ``log(v / σ)`` with ``v = sqrt(mean(r_window ** 2))``, the window's realised
                volatility against the trailing one
``log_vol``     ``log(v)``, the realised volatility per row (sampling-dependent, unit-free)
``skew``        sample skewness of the window's returns (0 when they are constant)
``trend``       ``sum(r_window) / (v · sqrt(w))``, a t-statistic-like drift in ``[-√w, √w]``
``autocorr``    ``sum(r_i · r_{i-1}) / sum(r_i ** 2)`` over the window, lag-1 (uncentred)
==============  ==========================================================================

``σ`` and ``v`` are floored at ``1e-12`` (flat prices; this never happens in river's series).
Windows inside a segment end at ``a + w, a + w + stride, ...`` up to ``b - 1``; with
``stride < window`` consecutive windows overlap (support and query windows of a class may then
share returns; the nearest-neighbour baseline sees the same data).

Examples
--------
>>> import numpy as np
>>> price = np.exp(np.cumsum(np.r_[0.0, np.random.default_rng(0).normal(0, 0.01, 199)]))
>>> segments = segments_between(len(price), [120])
>>> segments
[(0, 120), (120, 200)]
>>> ends = window_ends(*segments[1], window=10, stride=5, lookback=20)
>>> ends[:3].tolist(), window_features(price, ends, window=10, lookback=20).shape
([130, 135, 140], (14, 15))
>>> feature_names(2)
('z_1', 'z_2', 'vol_ratio', 'log_vol', 'skew', 'trend', 'autocorr')
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from ..checks import one_of, positive_int
from .segmentation import binary_segmentation

if TYPE_CHECKING:
    from adaptd.adapters.tasks.series import MarketSeries

__all__ = [
    "SUMMARY_FEATURES",
    "RegimeData",
    "Segment",
    "feature_names",
    "log_returns",
    "regime_dataset",
    "segments_between",
    "window_ends",
    "window_features",
]

SUMMARY_FEATURES: tuple[str, ...] = ("vol_ratio", "log_vol", "skew", "trend", "autocorr")
"""Names of the five window summaries that follow the ``window`` standardised returns."""

_CLIP = 10.0
_FLOOR = 1e-12

# Rows covered by the annotators (TCPD's subsampled series): Brent's starts at the first row of
# 2000 (see adaptd.adapters.tasks.series); Apple's and Bitcoin's cover every row.
_ANNOTATED_FROM_YEAR = {"brent": 2000}


def log_returns(price: np.ndarray) -> np.ndarray:
    """``r`` aligned with rows: ``r[t] = log(price[t] / price[t-1])``, ``r[0] = nan``."""
    p = np.asarray(price, dtype=np.float64)
    if p.ndim != 1 or len(p) < 2 or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("price must be a 1-d array of at least 2 finite positive prices")
    return np.r_[np.nan, np.diff(np.log(p))]


def segments_between(
    n_rows: int, change_points: Sequence[int], *, start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """Segments ``[a, b)`` that tile ``[start, end)``, cut at the change points inside it."""
    end = n_rows if end is None else end
    if not 0 <= start < end <= n_rows:
        raise ValueError(f"need 0 <= start < end <= n_rows, got {start}, {end}, {n_rows}")
    cuts = sorted({int(c) for c in change_points if start < c < end})
    bounds = [start, *cuts, end]
    return list(itertools.pairwise(bounds))


def window_ends(a: int, b: int, *, window: int, stride: int, lookback: int) -> np.ndarray:
    """End rows of the windows inside segment ``[a, b)`` with a full lookback before them."""
    _check_positive(window=window, stride=stride, lookback=lookback)
    first = max(a + window, window + lookback)
    return np.arange(first, b, stride, dtype=np.int64)


def window_features(
    price: np.ndarray, ends: np.ndarray, *, window: int, lookback: int
) -> np.ndarray:
    """Features ``(len(ends), window + 5)`` of the windows ending at ``ends`` (module docstring).

    Only ``price[e - window - lookback .. e]`` enters the features of the window ending at
    ``e``: nothing after the window, and the scale ``σ`` only from before it.
    """
    _check_positive(window=window, lookback=lookback)
    r = log_returns(price)
    ends = np.asarray(ends, dtype=np.int64)
    if ends.size and (ends.min() < window + lookback or ends.max() >= len(r)):
        raise ValueError(
            f"ends must lie in [{window + lookback}, {len(r) - 1}] (window + lookback rows of "
            f"history), got {int(ends.min())}..{int(ends.max())}"
        )
    offsets = np.arange(-window + 1, 1)
    rw = r[ends[:, None] + offsets]  # (n, w): r[e-w+1] .. r[e]
    past = r[ends[:, None] - window + np.arange(-lookback + 1, 1)]  # r[e-w-L+1] .. r[e-w]
    sigma = np.maximum(np.sqrt(np.mean(past**2, axis=1)), _FLOOR)
    vol = np.maximum(np.sqrt(np.mean(rw**2, axis=1)), _FLOOR)
    centred = rw - rw.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.mean(centred**2, axis=1))
    skew = np.where(sd > _FLOOR, np.mean(centred**3, axis=1) / np.maximum(sd, _FLOOR) ** 3, 0.0)
    trend = rw.sum(axis=1) / (vol * math.sqrt(window))
    autocorr = np.sum(rw[:, 1:] * rw[:, :-1], axis=1) / (window * vol**2)
    z = np.clip(rw / sigma[:, None], -_CLIP, _CLIP)
    summaries = np.stack((np.log(vol / sigma), np.log(vol), skew, trend, autocorr), axis=1)
    return np.concatenate((z, summaries), axis=1)


def feature_names(window: int) -> tuple[str, ...]:
    """Column names of ``window_features`` for this ``window``."""
    _check_positive(window=window)
    return (*(f"z_{i}" for i in range(1, window + 1)), *SUMMARY_FEATURES)


class Segment(NamedTuple):
    """One regime segment (a class of ``regime_dataset``)."""

    label: int
    """The class id of its windows in ``RegimeData.y``."""
    series: str
    """The data set it comes from (``adaptd.adapters.tasks.series.DATASETS``)."""
    start: int
    """First row."""
    end: int
    """One past the last row."""
    first_date: str
    last_date: str
    source: Literal["annotated", "detected"]
    """Where its change points came from."""
    windows: int
    """Examples (windows) it holds."""


class RegimeData(NamedTuple):
    """Windows of all kept segments: ``x`` float32 ``(n, window + 5)``, ``y`` int64 labels."""

    x: np.ndarray
    y: np.ndarray
    segments: list[Segment]


def regime_dataset(
    names: Sequence[str] = ("bitcoin", "brent", "apple"),
    *,
    changes: Literal["annotated", "detected"] = "annotated",
    how: Literal["union", "majority"] = "union",
    window: int = 20,
    stride: int = 5,
    lookback: int = 20,
    min_windows: int = 10,
    min_size: int = 30,
    penalty: float | None = None,
) -> RegimeData:
    """Regime segments and their windows from river's real price series (no download).

    Parameters
    ----------
    names
        Data sets of ``adaptd.adapters.tasks.series`` to use.
    changes
        ``"annotated"``: the annotators' change points (``how`` aggregates the annotators)
        where they annotated, ``binary_segmentation`` in rows they did not cover (Brent
        before 2000); ``"detected"``: ``binary_segmentation`` everywhere.
    window, stride, lookback
        Window length in returns, rows between window ends, returns in the trailing ``σ``.
        With the defaults (20, 5, 20) and ``changes="annotated"`` river's three series give
        37 segments (Bitcoin 3, Brent 16 annotated + 9 detected before 2000, Apple 9) and
        1928 windows; a window of 10 gives the same segments with noisier summaries.
    min_windows
        Segments with fewer windows are dropped (too short to give K shots plus queries).
    min_size, penalty
        Passed to ``binary_segmentation``.
    """
    from adaptd.adapters.tasks import (
        series as datasets,  # reads river's CSV files; the rest stays pure
    )

    one_of("changes", changes, ("annotated", "detected"))
    _check_positive(min_windows=min_windows)
    xs, ys, kept = [], [], []
    for name in names:
        series = datasets.load(name)
        price = np.asarray(series.price, dtype=np.float64)
        n = len(price)
        # Rows before `annotated` get detected change points, rows from it on annotated ones.
        annotated = _annotated_from(series) if changes == "annotated" else n
        cuts: list[int] = []
        if annotated > 0:
            found = binary_segmentation(
                log_returns(price)[1:annotated], min_size=min_size, penalty=penalty
            )
            cuts += [i + 1 for i in found]  # returns[i] is r[i + 1]: the regime starts there
        if annotated < n:
            cuts += [annotated, *(c for c in series.annotated_rows(how) if c > annotated)]
        dates = series.dates()
        for a, b in segments_between(n, cuts):
            ends = window_ends(a, b, window=window, stride=stride, lookback=lookback)
            if len(ends) < min_windows:
                continue
            label = len(kept)
            xs.append(window_features(price, ends, window=window, lookback=lookback))
            ys.append(np.full(len(ends), label, dtype=np.int64))
            origin: Literal["annotated", "detected"] = "annotated" if a >= annotated else "detected"
            kept.append(
                Segment(label, name, a, b, str(dates[a]), str(dates[b - 1]), origin, len(ends))
            )
    if not kept:
        raise ValueError("no segment has min_windows windows; lower min_windows or window")
    return RegimeData(np.concatenate(xs).astype(np.float32), np.concatenate(ys), kept)


def _annotated_from(series: MarketSeries) -> int:
    """First row the annotators covered (0 when they covered the whole series)."""
    year = _ANNOTATED_FROM_YEAR.get(series.name)
    if year is None:
        return 0
    years = series.dates().astype("datetime64[Y]").astype(int) + 1970
    return int(np.argmax(years >= year))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        positive_int(name, value)
