from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptd.adapters.tasks.series import DATASETS, MarketSeries, load, load_all, series_from_csv


def day(series: MarketSeries, row: int) -> str:
    return str(series.dates()[row])


@pytest.mark.parametrize(
    ("name", "stream", "rows"),
    [("apple", "AAPL", 1867), ("bitcoin", "BTC-USD", 822), ("brent", "BRENT", 8195)],
)
def test_full_series_are_loaded(name: str, stream: str, rows: int) -> None:
    series = load(name)
    assert (series.name, series.stream, len(series)) == (name, stream, rows)
    assert series.ts_ms.dtype == np.int64
    assert series.price.dtype == np.float64
    assert np.all(np.diff(series.ts_ms) > 0)
    assert np.all(series.ts_ms % 86_400_000 == 0)  # UTC midnight
    assert np.all(np.isfinite(series.price))
    assert np.all(series.price > 0)
    assert series.description


def test_load_all_follows_datasets() -> None:
    assert [s.name for s in load_all()] == list(DATASETS)


def test_apple_has_volume_and_the_others_do_not() -> None:
    apple = load("apple")
    assert apple.volume is not None
    assert len(apple.volume) == len(apple)
    assert np.all(apple.volume > 0)
    assert load("bitcoin").volume is None
    assert load("brent").volume is None


def test_apple_annotation_319_is_the_crash_of_2000_09_29() -> None:
    apple = load("apple")
    (row,) = apple.annotated_rows("majority")
    assert row == 1 + 3 * 319
    assert day(apple, row) == "2000-09-29"
    assert apple.price[row - 1] == pytest.approx(3.821428)
    assert apple.price[row] == pytest.approx(1.839284)
    assert all(319 * 3 + 1 in rows for rows in apple.annotations.values())


def test_brent_annotations_map_from_the_first_row_of_2000_in_steps_of_ten() -> None:
    brent = load("brent")
    assert day(brent, 3200) == "2000-01-04"
    assert day(brent, 3199).startswith("1999")
    assert day(brent, 3200 + 10 * 219) == "2008-07-29"  # the 2008 peak
    assert day(brent, 3200 + 10 * 230) == "2009-01-05"
    assert 3200 + 10 * 219 in brent.annotated_rows("majority")
    assert brent.annotations["6"] == (3200 + 10 * 219, 3200 + 10 * 230, 3200 + 10 * 288)
    assert brent.price[3200 + 10 * 230] < 0.4 * brent.price[3200 + 10 * 219]  # the 2008 collapse


def test_bitcoin_annotations_are_rows() -> None:
    bitcoin = load("bitcoin")
    assert bitcoin.annotations["8"] == (583,)
    assert day(bitcoin, 583) == "2017-11-26"


@pytest.mark.parametrize(
    ("name", "step", "offset"), [("apple", 3, 1), ("brent", 10, 3200), ("bitcoin", 1, 0)]
)
def test_every_annotation_maps_onto_the_tcpd_grid(name: str, step: int, offset: int) -> None:
    from river.drift import datasets as river_datasets

    river_class = {"apple": "Apple", "brent": "BrentSpotPrice", "bitcoin": "Bitcoin"}[name]
    raw = getattr(river_datasets, river_class)().annotations
    series = load(name)
    assert series.sampling_step == step
    assert set(series.annotations) == set(raw)
    for annotator, points in raw.items():
        assert series.annotations[annotator] == tuple(
            sorted(offset + step * k for k in set(points))
        )


def test_apple_close_is_split_adjusted() -> None:
    """Adj Close is always adjusted; a split left in Close would change their ratio."""
    with Path(_apple_csv()).open() as handle:
        rows = list(csv.DictReader(handle))
    ratio = np.array([float(r["Close"]) / float(r["Adj Close"]) for r in rows])
    assert np.ptp(ratio) / ratio.mean() < 1e-4
    apple = load("apple")
    split_day = int(np.searchsorted(apple.dates(), np.datetime64("2000-06-21")))
    assert apple.price[split_day] / apple.price[split_day - 1] > 0.9  # AAPL split 2:1 that day


def _apple_csv() -> str:
    from river.drift.datasets import Apple

    return str(Apple().path)


def test_union_and_majority() -> None:
    series = MarketSeries(
        "x", "X", np.arange(10, dtype=np.int64), np.ones(10), None,
        {"a": (1, 5), "b": (5, 7), "c": (5, 1)}, "",
    )  # fmt: skip
    assert series.annotated_rows() == (1, 5, 7)
    assert series.annotated_rows("majority") == (1, 5)
    with pytest.raises(ValueError, match="how"):
        series.annotated_rows("intersection")  # type: ignore[arg-type]


def test_series_checks_lengths_and_rows() -> None:
    with pytest.raises(ValueError, match="price"):
        MarketSeries("x", "X", np.arange(3), np.ones(2), None, {}, "")
    with pytest.raises(ValueError, match="outside"):
        MarketSeries("x", "X", np.arange(3), np.ones(3), None, {"a": (3,)}, "")


def test_loaded_arrays_are_read_only() -> None:
    with pytest.raises(ValueError, match="read-only"):
        load("bitcoin").price[0] = 1.0


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown data set 'gold'"):
        load("gold")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_series_from_csv_reads_all_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "ticks.csv",
        ["time", "last", "qty", "b", "a"],
        [
            ["2024-01-02T09:30:00Z", 100.5, 10, 100.4, 100.6],
            ["2024-01-02T09:30:01+00:00", 100.7, 0, 100.6, 100.8],
            ["2024-01-02 09:30:01", 100.6, 3.5, 100.5, 100.7],
        ],
    )
    series = series_from_csv(
        path,
        stream="XYZ",
        time_col="time",
        price_col="last",
        volume_col="qty",
        bid_col="b",
        ask_col="a",
    )
    start = 1_704_187_800_000
    assert series.stream == "XYZ"
    assert series.name == "ticks"
    assert series.ts_ms.tolist() == [start, start + 1000, start + 1000]
    assert series.price.tolist() == [100.5, 100.7, 100.6]
    assert series.volume is not None
    assert series.volume.tolist() == [10.0, 0.0, 3.5]
    assert series.bid is not None
    assert series.ask is not None
    assert series.bid.tolist() == [100.4, 100.6, 100.5]
    assert series.ask.tolist() == [100.6, 100.8, 100.7]
    assert series.annotations == {}


@pytest.mark.parametrize(
    ("time_format", "stamps"),
    [("epoch_ms", ["1700000000000", "1700000000500"]), ("epoch_s", ["1700000000", "1700000000.5"]),
     ("%d.%m.%Y %H:%M", ["14.11.2023 22:13", "14.11.2023 22:14"])],
)  # fmt: skip
def test_time_formats(tmp_path: Path, time_format: str, stamps: list[str]) -> None:
    path = write_csv(tmp_path / "p.csv", ["t", "p"], [[stamps[0], 1.0], [stamps[1], 2.0]])
    series = series_from_csv(path, stream="S", time_col="t", price_col="p", time_format=time_format)
    expected = {"epoch_ms": 500, "epoch_s": 500, "%d.%m.%Y %H:%M": 60_000}[time_format]
    assert int(np.diff(series.ts_ms)[0]) == expected
    assert series.ts_ms[0] // 60_000 == 1_700_000_000_000 // 60_000


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["2024-01-01", 1.0], ["2024-01-02", "abc"]], r"line 3, column 'p': bad value 'abc'"),
        ([["2024-01-01", 1.0], ["2024-01-02", -2]], r"line 3, column 'p'.*must be > 0"),
        ([["2024-01-01", "nan"]], r"line 2, column 'p'.*not finite"),
        ([["2024-01-01", 1.0], ["2024-01-02"]], r"line 3, column 'p': bad value ''"),
        ([["2024-01-02", 1.0], ["2024-01-01", 1.0]], r"line 3, column 't'.*backwards"),
        ([["yesterday", 1.0]], r"line 2, column 't': bad value 'yesterday'"),
        ([], "no data rows"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, rows: list[list[object]], message: str) -> None:
    path = write_csv(tmp_path / "bad.csv", ["t", "p"], rows)
    with pytest.raises(ValueError, match=message):
        series_from_csv(path, stream="S", time_col="t", price_col="p")


def test_negative_volume_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "v.csv", ["t", "p", "v"], [["2024-01-01", 1.0, -1]])
    with pytest.raises(ValueError, match=r"line 2, column 'v'.*>= 0"):
        series_from_csv(path, stream="S", time_col="t", price_col="p", volume_col="v")


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", ["t", "p"], [["2024-01-01", 1.0]])
    with pytest.raises(ValueError, match=r"no volume column 'vol'; the columns are \['t', 'p'\]"):
        series_from_csv(path, stream="S", time_col="t", price_col="p", volume_col="vol")


@settings(max_examples=30, deadline=None)
@given(
    prices=st.lists(st.floats(min_value=1e-6, max_value=1e9), min_size=1, max_size=40),
    gaps=st.lists(st.integers(min_value=0, max_value=10**9), min_size=40, max_size=40),
)
def test_csv_round_trip(prices: list[float], gaps: list[int]) -> None:
    stamps = np.cumsum([1_600_000_000_000, *gaps])[: len(prices)]
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(
            Path(folder) / "r.csv",
            ["t", "p"],
            [[int(t), repr(p)] for t, p in zip(stamps, prices, strict=True)],
        )
        series = series_from_csv(
            path, stream="R", time_col="t", price_col="p", time_format="epoch_ms"
        )
    assert series.ts_ms.tolist() == stamps.tolist()
    assert series.price.tolist() == prices
