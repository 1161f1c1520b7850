"""Real market price series that ship with river, with their annotated change points.

The three series are the market data sets of the Turing Institute change-point benchmark
(TCPD) as river packages them: Bitcoin, Brent crude and Apple daily prices. Nothing is
downloaded. Each series is returned in full (every CSV row, so a feed replays all of it).

TCPD annotated *subsampled* versions of the Apple and Brent series, so river's annotation
indices are not CSV rows. They are mapped here to rows of the full series:

========  ==========================================  =====================================
data set  TCPD series (data rows of the river CSV)    annotation ``k`` is full row
========  ==========================================  =====================================
apple     every 3rd row, from the 2nd (``[1::3]``)    ``1 + 3 k``
brent     every 10th row, from the first 2000 row     ``3200 + 10 k`` (row 3200 = 2000-01-04)
bitcoin   every row                                   ``k``
========  ==========================================  =====================================

``MarketSeries.sampling_step`` keeps the step (3, 10, 1) so that tolerances stated on the
TCPD series can be converted to full rows (see ``adaptd.tools.report.margin_for``).

Examples
--------
>>> series = load("apple")
>>> len(series), series.stream, series.sampling_step
(1867, 'AAPL', 3)
>>> row = series.annotated_rows("majority")[0]
>>> str(series.dates()[row]), float(series.price[row - 1]), float(series.price[row])
('2000-09-29', 3.821428, 1.839284)
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

DATASETS: tuple[str, ...] = ("bitcoin", "brent", "apple")


@dataclass(frozen=True)
class MarketSeries:
    """One price series, with change points annotated as row indices into this series.

    The arrays are read-only, so a loaded series can be shared safely.
    """

    name: str
    stream: str
    ts_ms: np.ndarray
    price: np.ndarray
    volume: np.ndarray | None
    annotations: dict[str, tuple[int, ...]]
    description: str
    bid: np.ndarray | None = None
    ask: np.ndarray | None = None
    sampling_step: int = 1

    def __post_init__(self) -> None:
        n = len(self.ts_ms)
        for label, column in self._columns().items():
            if len(column) != n:
                raise ValueError(f"{self.name}: {label} has {len(column)} rows, ts_ms has {n}")
            column.flags.writeable = False
        for annotator, rows in self.annotations.items():
            bad = [r for r in rows if not 0 <= r < n]
            if bad:
                raise ValueError(
                    f"{self.name}: annotator {annotator!r} has rows {bad} outside 0..{n - 1}"
                )
        if self.sampling_step < 1:
            raise ValueError(f"sampling_step must be >= 1, got {self.sampling_step}")

    def _columns(self) -> dict[str, np.ndarray]:
        optional = {"volume": self.volume, "bid": self.bid, "ask": self.ask}
        columns = {"ts_ms": self.ts_ms, "price": self.price}
        columns.update({k: v for k, v in optional.items() if v is not None})
        return columns

    def __len__(self) -> int:
        return len(self.ts_ms)

    def dates(self) -> np.ndarray:
        """The timestamps as ``datetime64[D]`` (UTC days)."""
        return self.ts_ms.astype("datetime64[ms]").astype("datetime64[D]")

    def annotated_rows(self, how: Literal["union", "majority"] = "union") -> tuple[int, ...]:
        """Annotated change points over all annotators, as sorted row indices.

        ``"union"`` keeps a row any annotator marked; ``"majority"`` keeps a row that more
        than half of the annotators marked (as TCPD and river aggregate them).
        """
        if how == "union":
            return tuple(sorted({r for rows in self.annotations.values() for r in rows}))
        if how == "majority":
            votes: dict[int, int] = {}
            for rows in self.annotations.values():
                for r in set(rows):
                    votes[r] = votes.get(r, 0) + 1
            quorum = len(self.annotations) / 2
            return tuple(sorted(r for r, count in votes.items() if count > quorum))
        raise ValueError(f"how must be 'union' or 'majority', got {how!r}")


@dataclass(frozen=True)
class _Source:
    river_class: str
    stream: str
    time_col: str
    time_format: str
    price_col: str
    volume_col: str | None
    step: int
    first_year: int | None  # TCPD series starts at the first row of this year (else row 1 or 0)
    offset: int
    note: str


_SOURCES: Mapping[str, _Source] = {
    "bitcoin": _Source(
        "Bitcoin", "BTC-USD", "date", "%Y-%m-%d", "price", None, 1, None, 0,
        "Bitcoin market price in USD (blockchain.com), one row every 3 days.",
    ),
    "brent": _Source(
        "BrentSpotPrice", "BRENT", "day", "%m/%d/%Y", "DPB", None, 10, 2000, 0,
        "Brent crude spot price in USD per barrel (U.S. EIA), trading days.",
    ),
    "apple": _Source(
        "Apple", "AAPL", "Date", "%Y-%m-%d", "Close", "Volume", 3, None, 1,
        "Apple (AAPL) daily close in USD, split-adjusted, with volume (Yahoo Finance).",
    ),
}  # fmt: skip


@functools.cache
def load(name: str) -> MarketSeries:
    """Load one of ``DATASETS`` from the CSV files river ships (no download)."""
    try:
        source = _SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; choose from {DATASETS}") from None
    from river.drift import datasets as river_datasets  # ~0.7 s import; only when loading

    dataset = getattr(river_datasets, source.river_class)()
    series = series_from_csv(
        dataset.path,
        stream=source.stream,
        time_col=source.time_col,
        time_format=source.time_format,
        price_col=source.price_col,
        volume_col=source.volume_col,
    )
    offset = source.offset
    if source.first_year is not None:
        years = series.ts_ms.astype("datetime64[ms]").astype("datetime64[Y]").astype(int) + 1970
        offset = int(np.argmax(years >= source.first_year))
    annotations = {
        str(annotator): tuple(sorted({offset + source.step * int(k) for k in rows}))
        for annotator, rows in dataset.annotations.items()
    }
    first, last = series.dates()[[0, -1]]
    description = (
        f"{source.note} {first} to {last}, {len(series)} rows. Change points annotated by "
        f"{len(annotations)} annotators of the Turing change-point benchmark on every "
        f"{_ordinal(source.step)}row from row {offset}, mapped to rows of this series."
    )
    return MarketSeries(
        name=name,
        stream=source.stream,
        ts_ms=series.ts_ms,
        price=series.price,
        volume=series.volume,
        annotations=annotations,
        description=description,
        sampling_step=source.step,
    )


def load_all() -> list[MarketSeries]:
    """All of ``DATASETS``, in that order."""
    return [load(name) for name in DATASETS]


def _ordinal(n: int) -> str:
    return {1: "", 2: "2nd ", 3: "3rd "}.get(n, f"{n}th ")


def _parse_time(text: str, time_format: str | None) -> int:
    if time_format == "epoch_ms":
        return int(text)
    if time_format == "epoch_s":
        return round(float(text) * 1000)
    moment = (
        datetime.fromisoformat(text)
        if time_format is None
        else datetime.strptime(text, time_format)
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # naive times in market files are taken as UTC
    return round(moment.timestamp() * 1000)


def _cell(record: dict[str, str | None], column: str) -> str:
    return record.get(column) or ""  # a short row gives None for the missing cells


def _checked_number(text: str, role: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not finite")
    if number < 0 or (number == 0 and role != "volume"):
        raise ValueError("must be >= 0" if role == "volume" else "must be > 0")
    return number


def series_from_csv(
    path: str | Path,
    *,
    stream: str,
    time_col: str,
    price_col: str,
    volume_col: str | None = None,
    bid_col: str | None = None,
    ask_col: str | None = None,
    time_format: str | None = None,
) -> MarketSeries:
    """Read a price series from a CSV file with a header row.

    Parameters
    ----------
    path
        The CSV file.
    stream
        The stream id (the Kafka key of its events).
    time_col, price_col, volume_col, bid_col, ask_col
        Column names. Prices (and bid/ask) must be finite and positive, volumes finite and
        non-negative, timestamps non-decreasing.
    time_format
        ``None`` for ISO 8601 (``2024-01-31``, ``2024-01-31T14:30:00+00:00``), ``"epoch_ms"``
        or ``"epoch_s"`` for numbers, else a ``strptime`` format. Times without a zone are UTC.

    Raises ValueError naming the file, line and column of the first bad value.
    """
    path = Path(path)
    if not stream:
        raise ValueError("stream must be a non-empty string")
    wanted = {"time": time_col, "price": price_col, "volume": volume_col}
    wanted |= {"bid": bid_col, "ask": ask_col}
    columns = {role: col for role, col in wanted.items() if col is not None}
    values: dict[str, list[float]] = {role: [] for role in columns if role != "time"}
    times: list[int] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for role, col in columns.items():
            if col not in header:
                raise ValueError(f"{path}: no {role} column {col!r}; the columns are {header}")
        for record in reader:
            column = time_col
            try:
                ts = _parse_time(_cell(record, column).strip(), time_format)
                if times and ts < times[-1]:
                    raise ValueError("time goes backwards")
                times.append(ts)
                for role, numbers in values.items():
                    column = columns[role]
                    numbers.append(_checked_number(_cell(record, column), role))
            except ValueError as exc:
                raise ValueError(
                    f"{path}, line {reader.line_num}, column {column!r}: "
                    f"bad value {_cell(record, column)!r} ({exc})"
                ) from exc
    if not times:
        raise ValueError(f"{path}: no data rows")
    arrays = {role: np.asarray(v, dtype=np.float64) for role, v in values.items()}
    return MarketSeries(
        name=path.stem,
        stream=stream,
        ts_ms=np.asarray(times, dtype=np.int64),
        price=arrays["price"],
        volume=arrays.get("volume"),
        annotations={},
        description=f"{price_col} from {path.name}, {len(times)} rows.",
        bid=arrays.get("bid"),
        ask=arrays.get("ask"),
    )
