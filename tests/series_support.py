"""Synthetic price series for tests that replay markets: one event a day from a fixed start,
prices from log returns."""

from __future__ import annotations

import numpy as np

from adaptd.adapters.tasks.series import MarketSeries

T0_MS = 1_700_000_000_000
DAY_MS = 86_400_000


def daily_series(name: str, stream: str, log_returns: np.ndarray, what: str) -> MarketSeries:
    """A series whose prices start near 100 and move by ``log_returns``, one event a day."""
    n = len(log_returns)
    return MarketSeries(
        name=name,
        stream=stream,
        ts_ms=T0_MS + DAY_MS * np.arange(n, dtype=np.int64),
        price=100 * np.exp(np.cumsum(log_returns)),
        volume=None,
        annotations={},
        description=what,
    )


def first(series: MarketSeries, n: int) -> MarketSeries:
    """The first ``n`` events of ``series``, as a series of their own."""
    return MarketSeries(
        name=f"{series.name}[:{n}]",
        stream=series.stream,
        ts_ms=series.ts_ms[:n].copy(),
        price=series.price[:n].copy(),
        volume=None,
        annotations={},
        description=f"the first {n} events of {series.description}",
    )
