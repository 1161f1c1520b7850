"""Market regimes: segments tile the series, windows look only backwards, river's series give
the documented number of classes."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from adaptd.adapters.tasks.market import (
    feature_names,
    log_returns,
    regime_dataset,
    segments_between,
    window_ends,
    window_features,
)
from adaptd.adapters.tasks.segmentation import binary_segmentation

W, L = 10, 20


def _price(n: int = 400, seed: int = 0) -> np.ndarray:
    r = np.random.default_rng(seed).normal(0.0, 0.01, n - 1)
    return 100.0 * np.exp(np.cumsum(np.r_[0.0, r]))


def test_segments_tile_the_range_between_change_points() -> None:
    segments = segments_between(100, [40, 10, 40, 0, 100, 130])
    assert segments == [(0, 10), (10, 40), (40, 100)]
    inner = segments_between(100, [10, 40, 70], start=20, end=60)
    assert inner == [(20, 40), (40, 60)]
    with pytest.raises(ValueError, match="start < end"):
        segments_between(10, [], start=5, end=5)


def test_windows_stay_inside_their_segment() -> None:
    a, b = 100, 180
    ends = window_ends(a, b, window=W, stride=5, lookback=L)
    assert ends[0] == a + W and ends[-1] <= b - 1 and np.all(np.diff(ends) == 5)
    # The window's returns r[e-W+1..e] use prices e-W..e, all inside [a, b).
    assert np.all(ends - W >= a) and np.all(ends < b)
    # At the start of a series a window needs L returns of history before it.
    assert window_ends(0, 100, window=W, stride=1, lookback=L)[0] == W + L


def test_features_use_only_past_data_for_standardisation() -> None:
    price = _price()
    ends = np.array([60, 150, 300])
    base = window_features(price, ends, window=W, lookback=L)
    for e, row in zip(ends, base, strict=True):
        changed = price.copy()
        changed[e + 1 :] *= np.exp(np.random.default_rng(1).normal(0, 0.2, len(price) - e - 1))
        assert np.array_equal(window_features(changed, [e], window=W, lookback=L)[0], row)
        older = price.copy()
        older[: e - W - L] *= 3.0  # rows before p[e-W-L], the first price the lookback uses
        assert np.array_equal(window_features(older, [e], window=W, lookback=L)[0], row)
        spike = price.copy()
        spike[e - W - 5] *= 1.3  # a jump inside the lookback changes the scale
        assert not np.array_equal(window_features(spike, [e], window=W, lookback=L)[0], row)


def test_feature_values_follow_the_documented_formulas() -> None:
    price = _price()
    e = 200
    row = window_features(price, [e], window=W, lookback=L)[0]
    r = log_returns(price)
    window, past = r[e - W + 1 : e + 1], r[e - W - L + 1 : e - W + 1]
    sigma, vol = np.sqrt(np.mean(past**2)), np.sqrt(np.mean(window**2))
    names = feature_names(W)
    assert len(row) == len(names) == W + 5
    got = dict(zip(names, row, strict=True))
    assert np.allclose(row[:W], window / sigma)
    assert got["vol_ratio"] == pytest.approx(np.log(vol / sigma))
    assert got["log_vol"] == pytest.approx(np.log(vol))
    c = window - window.mean()
    assert got["skew"] == pytest.approx(np.mean(c**3) / np.mean(c**2) ** 1.5)
    assert got["trend"] == pytest.approx(window.sum() / (vol * np.sqrt(W)))
    assert got["autocorr"] == pytest.approx(np.sum(window[1:] * window[:-1]) / np.sum(window**2))
    # Scale-free: multiplying every price by a constant changes nothing.
    assert np.allclose(window_features(price * 37.0, [e], window=W, lookback=L)[0], row)
    with pytest.raises(ValueError, match="ends must lie"):
        window_features(price, [W + L - 1], window=W, lookback=L)


def test_binary_segmentation_finds_a_planted_volatility_change() -> None:
    rng = np.random.default_rng(0)
    r = np.r_[rng.normal(0, 0.01, 300), rng.normal(0, 0.04, 200), rng.normal(0.0, 0.01, 300)]
    found = binary_segmentation(r, min_size=30)
    assert len(found) == 2
    assert abs(found[0] - 300) <= 10 and abs(found[1] - 500) <= 10
    assert binary_segmentation(rng.normal(0, 0.01, 800), min_size=30) == []
    with pytest.raises(ValueError, match="min_size"):
        binary_segmentation(r, min_size=1)


@pytest.fixture(scope="module")
def regimes():
    return regime_dataset()


def test_real_series_give_the_documented_classes(regimes) -> None:
    x, y, segments = regimes
    counts = Counter((s.series, s.source) for s in segments)
    assert len(segments) == 37
    assert counts == {
        ("bitcoin", "annotated"): 3,
        ("brent", "detected"): 9,
        ("brent", "annotated"): 16,
        ("apple", "annotated"): 9,
    }
    assert x.shape == (len(y), 20 + 5) and x.dtype == np.float32 and np.all(np.isfinite(x))
    assert np.array_equal(np.bincount(y), [s.windows for s in segments])
    assert min(s.windows for s in segments) >= 10


def test_real_segments_lie_between_change_points(regimes) -> None:
    from adaptd.adapters.tasks.series import load

    _, _, segments = regimes
    for name in ("bitcoin", "apple"):
        series = load(name)
        changes = series.annotated_rows("union")
        tiling = segments_between(len(series), changes)
        kept = [(s.start, s.end) for s in segments if s.series == name]
        assert set(kept) <= set(tiling)  # whole segments, cut exactly at the annotations
        assert tiling[0][0] == 0 and tiling[-1][1] == len(series)
    brent = [s for s in segments if s.series == "brent"]
    assert all(s.end <= 3200 for s in brent if s.source == "detected")
    assert all(s.start >= 3200 for s in brent if s.source == "annotated")
    ordered = sorted((s.series, s.start, s.end) for s in segments)
    for (sa, _, end), (sb, start, _) in itertools.pairwise(ordered):
        assert sa != sb or end <= start  # segments never overlap


def test_detected_everywhere_option() -> None:
    detected = regime_dataset(["apple"], changes="detected")
    assert {s.source for s in detected.segments} == {"detected"}
    assert len(detected.segments) == 3
    with pytest.raises(ValueError, match="changes"):
        regime_dataset(changes="guessed")
