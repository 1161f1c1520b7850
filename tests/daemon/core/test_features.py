from __future__ import annotations

import itertools
import json
import math
import pickle
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import stored

from adaptd.daemon.config.settings import FeatureSettings
from adaptd.daemon.core.features import (
    VOL_FLOOR,
    FeatureExtractor,
    alpha_of,
    feature_names,
    feature_spec,
)

SETTINGS = FeatureSettings(
    momentum_horizons=(5, 20, 60),
    fast_halflife=10.0,
    slow_halflife=100.0,
    label_horizon=5,
    label_clip=10.0,
    warmup_events=60,
)
NAMES = feature_names(SETTINGS)


def random_walk(seed: int, n: int, sigma: float = 0.01, start: float = 100.0) -> list[float]:
    rng = random.Random(seed)
    prices, p = [], start
    for _ in range(n):
        p *= math.exp(rng.gauss(0.0, sigma))
        prices.append(p)
    return prices


def features_of(prices: list[float], s: FeatureSettings = SETTINGS, **quotes: list) -> list:
    fx = FeatureExtractor(s)
    out = []
    for i, p in enumerate(prices):
        out.append(fx.update(p, **{k: v[i] for k, v in quotes.items()}))
    return out


def test_names_in_fixed_order() -> None:
    assert NAMES == (
        "ret_z",
        "mean_fast_z",
        "mean_slow_z",
        "vol_ratio",
        "mom_5_z",
        "mom_20_z",
        "mom_60_z",
        "spread_z",
        "volume_z",
    )


def test_duplicate_horizons_rejected() -> None:
    dup = SETTINGS.model_copy(update={"momentum_horizons": (5, 5)})
    with pytest.raises(ValueError, match="distinct"):
        feature_names(dup)
    with pytest.raises(ValueError, match="distinct"):
        FeatureExtractor(dup)


def test_warmup_then_vectors_of_the_right_length() -> None:
    fx = FeatureExtractor(SETTINGS)
    prices = random_walk(0, 100)
    for i, p in enumerate(prices[:60]):
        assert fx.update(p) is None
        assert fx.count == i + 1
        assert fx.log_price == math.log(p)
        assert fx.vol > 0
    assert fx.update(prices[60]) is not None
    x = fx.update(prices[61])
    assert len(x) == len(NAMES)
    assert all(type(v) is float for v in x)


def test_first_event_has_zero_return_and_vol_is_seeded_from_first_returns() -> None:
    fx = FeatureExtractor(SETTINGS)
    fx.update(100.0)
    assert fx.ret == 0.0
    assert fx.vol == VOL_FLOOR
    fx.update(101.0)
    r1 = math.log(101.0 / 100.0)
    assert fx.ret == pytest.approx(r1)
    assert fx.vol == pytest.approx(abs(r1))  # a plain mean, not (1 - alpha) * 0 + ...
    fx.update(99.0)
    r2 = math.log(99.0 / 101.0)
    assert fx.vol == pytest.approx(math.sqrt((r1 * r1 + r2 * r2) / 2))


def test_flat_stream_keeps_a_positive_vol() -> None:
    fx = FeatureExtractor(SETTINGS)
    for _ in range(100):
        x = fx.update(50.0)
    assert fx.vol == VOL_FLOOR
    assert x == (0.0,) * len(NAMES)


def test_ret_z_uses_vol_from_before_the_event() -> None:
    fx = FeatureExtractor(SETTINGS)
    for p in random_walk(1, 200, sigma=0.001):
        fx.update(p)
    before = fx.vol
    crash = math.exp(fx.log_price) * 0.995  # a 5-sigma drop
    x = fx.update(crash)
    assert fx.scale == before
    assert x[0] == pytest.approx(fx.ret / before)
    assert x[0] < -4.5
    assert fx.vol > before  # the drop is included afterwards
    x = fx.update(math.exp(fx.log_price) * 0.9)  # far beyond the clip
    assert x[0] == -SETTINGS.label_clip


def test_momentum_matches_its_definition() -> None:
    prices = random_walk(2, 300)
    fx = FeatureExtractor(SETTINGS)
    for t, p in enumerate(prices):
        scale = fx.vol
        x = fx.update(p)
        if t in (60, 150, 299):
            for j, h in enumerate(SETTINGS.momentum_horizons):
                expected = math.log(p / prices[t - h]) / (scale * math.sqrt(h))
                assert x[4 + j] == pytest.approx(max(-10.0, min(10.0, expected)))


@pytest.mark.parametrize("sigma", [1e-4, 3e-2])
def test_features_are_unit_scale_on_iid_returns(sigma: float) -> None:
    xs = [x for x in features_of(random_walk(3, 20_000, sigma)) if x is not None][500:]
    for j, name in enumerate(NAMES[:7]):
        column = [x[j] for x in xs]
        if name == "vol_ratio":
            assert abs(statistics.fmean(column)) < 0.2
            continue
        assert abs(statistics.fmean(column)) < 0.25, name
        assert 0.7 < statistics.pstdev(column) < 1.4, name


def test_price_level_does_not_matter() -> None:
    prices = random_walk(4, 400)
    quotes = {
        "bid": [p * 0.999 for p in prices],
        "ask": [p * (1.001 + 0.0005 * (i % 3)) for i, p in enumerate(prices)],
        "volume": [float(i % 7) for i in range(400)],
    }
    base = features_of(prices, **quotes)
    scaled = features_of(
        [p * 1234.5 for p in prices],
        bid=[b * 1234.5 for b in quotes["bid"]],
        ask=[a * 1234.5 for a in quotes["ask"]],
        volume=quotes["volume"],
    )
    for a, b in zip(base[60:], scaled[60:], strict=True):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-6)


def test_vol_ratio_rises_after_volatility_rises() -> None:
    prices = random_walk(5, 1000, 0.01)
    prices += random_walk(6, 50, 0.04, start=prices[-1])
    x = features_of(prices)[-1]
    assert x[NAMES.index("vol_ratio")] > 0.5


def test_spread_and_volume_z() -> None:
    n = 300
    prices = random_walk(7, n)
    absent = features_of(prices)
    assert all(x[-2:] == (0.0, 0.0) for x in absent if x is not None)
    rng = random.Random(8)
    half = [0.0005 * (1 + 0.1 * rng.random()) for _ in range(n)]
    half[-1] = 0.005  # the spread widens tenfold
    volume = [100.0 * (1 + 0.1 * rng.random()) for _ in range(n)]
    volume[-1] = 10_000.0
    x = features_of(
        prices,
        bid=[p * (1 - h) for p, h in zip(prices, half, strict=True)],
        ask=[p * (1 + h) for p, h in zip(prices, half, strict=True)],
        volume=volume,
    )
    assert x[-1][-2] == SETTINGS.label_clip
    assert x[-1][-1] > 5.0
    assert all(abs(v[-2]) < 4 and abs(v[-1]) < 4 for v in x[60:-1])


prices_st = st.lists(
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=70,
    max_size=120,
)


@given(prices_st, prices_st, st.integers(0, 119), st.booleans())
@settings(max_examples=60, deadline=None)
def test_no_look_ahead(first: list, other: list, t: int, quoted: bool) -> None:
    """Changing events after t leaves every feature up to t unchanged."""
    t = min(t, len(first) - 1)
    second = first[: t + 1] + other
    small = SETTINGS.model_copy(update={"warmup_events": 60})

    def run(prices: list[float]) -> list:
        fx = FeatureExtractor(small)
        out = []
        for i, p in enumerate(prices):
            q = {"bid": p * 0.99, "ask": p * 1.01, "volume": float(i)} if quoted else {}
            out.append((fx.update(p, **q), fx.ret, fx.vol, fx.log_price))
        return out

    a, b = run(first), run(second)
    assert a[: t + 1] == b[: t + 1]
    for x, *_ in a:
        assert x is None or all(-10.0 <= v <= 10.0 for v in x)


def test_pickle_mid_stream_continues_identically() -> None:
    prices = random_walk(9, 600)
    fx = FeatureExtractor(SETTINGS)
    for p in prices[:250]:
        fx.update(p, bid=p * 0.999, ask=p * 1.001, volume=1.0)
    copy = stored(fx)
    for p in prices[250:]:
        q = {"bid": p * 0.999, "ask": p * 1.002, "volume": 2.0}
        assert copy.update(p, **q) == fx.update(p, **q)
        assert (copy.vol, copy.ret, copy.count, copy.sq_sum) == (
            fx.vol,
            fx.ret,
            fx.count,
            fx.sq_sum,
        )


def test_sq_sum_is_the_running_sum_of_squared_log_returns() -> None:
    prices = random_walk(3, 300)
    fx = FeatureExtractor(SETTINGS)
    sums = []
    for p in prices:
        fx.update(p)
        sums.append(fx.sq_sum)
    rets = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    assert sums[0] == 0.0
    assert sums[-1] == pytest.approx(math.fsum(r * r for r in rets), rel=1e-12)
    # The realised variance between events 100 and 105: the difference of their sums.
    assert sums[105] - sums[100] == pytest.approx(math.fsum(r * r for r in rets[100:105]))


def test_an_extractor_pickled_before_sq_sum_existed_restores_and_counts_from_zero() -> None:
    fx = FeatureExtractor(SETTINGS)
    for p in random_walk(4, 100):
        fx.update(p)
    state = pickle.loads(pickle.dumps(fx.__getstate__()))  # a copy, as restored
    del state[1]["sq_sum"]  # as pickled by the code before it
    old = FeatureExtractor.__new__(FeatureExtractor)
    old.__setstate__(state)
    assert old.sq_sum == 0.0 and (old.vol, old.count) == (fx.vol, fx.count)
    assert old.update(101.0) == fx.update(101.0)
    assert old.sq_sum == pytest.approx(fx.ret**2)


def test_spec_is_json_and_describes_the_features() -> None:
    spec = json.loads(json.dumps(feature_spec(SETTINGS)))
    assert spec["names"] == list(NAMES)
    assert spec["momentum_horizons"] == [5, 20, 60]
    assert spec["clip"] == 10.0
    assert "label" not in spec  # the policy task describes its label


def test_alpha_of_halflife() -> None:
    assert (1 - alpha_of(10.0)) ** 10 == pytest.approx(0.5)
    with pytest.raises(ValueError, match="halflife"):
        alpha_of(0.0)


def test_fast_var_is_the_riskmetrics_recursion_after_plain_means_of_the_first_returns() -> None:
    prices = random_walk(8, 200)
    fx = FeatureExtractor(SETTINGS)
    a = alpha_of(SETTINGS.fast_halflife)
    s2, got, want = 0.0, [], []
    for m, p in enumerate(prices):
        fx.update(p)
        if m:
            r = math.log(p / prices[m - 1])
            w = a if m * a >= 1.0 else 1.0 / m  # a plain mean while 1/m > a
            s2 += w * (r * r - s2)
            got.append(fx.fast_var)
            want.append(s2)
    assert got == pytest.approx(want, rel=1e-12)
    # Past the first 1/a returns, s2_t = (1 - a) s2_(t-1) + a r_t^2: RiskMetrics.
    assert 1 - a == pytest.approx(0.933, abs=1e-3)


CALENDAR = FeatureSettings(
    **{**SETTINGS.model_dump(), "calendar": ("day_of_week", "hour_of_day", "month_end")}
)
FRIDAY_13H = 1_711_717_200_000  # 2024-03-29 13:00 UTC, the last weekday of March


def hourly(n: int, start: int = FRIDAY_13H - 100 * 3_600_000) -> list[int]:
    return [start + i * 3_600_000 for i in range(n)]


def test_calendar_is_off_by_default_and_the_vector_is_unchanged() -> None:
    assert FeatureSettings().calendar == ()
    assert feature_names(FeatureSettings())[-1] == "volume_z"
    assert "calendar" not in feature_spec(SETTINGS)
    prices = random_walk(10, 100)
    with_time = FeatureExtractor(SETTINGS)
    xs = [with_time.update(p, ts_ms=t) for p, t in zip(prices, hourly(100), strict=True)]
    assert xs == features_of(prices)


def test_calendar_names_follow_the_others_in_a_fixed_order() -> None:
    assert feature_names(CALENDAR) == (
        *NAMES,
        "hour_of_day_sin",
        "hour_of_day_cos",
        "day_of_week_sin",
        "day_of_week_cos",
        "month_end",
    )


def test_calendar_features_of_the_event_time_follow_the_price_features() -> None:
    prices, times = random_walk(11, 101), hourly(101)
    plain, with_calendar = FeatureExtractor(SETTINGS), FeatureExtractor(CALENDAR)
    for p, t in zip(prices, times, strict=True):
        x, y = plain.update(p), with_calendar.update(p, ts_ms=t)
        assert (x is None) == (y is None)
    assert len(y) == len(feature_names(CALENDAR))
    assert y[: len(NAMES)] == x
    hour, friday = 2 * math.pi * 13 / 24, 2 * math.pi * 4 / 7
    assert y[len(NAMES) :] == pytest.approx(
        (math.sin(hour), math.cos(hour), math.sin(friday), math.cos(friday), 1.0)
    )


def test_calendar_features_are_not_clipped() -> None:
    tight = CALENDAR.model_copy(update={"label_clip": 0.5})
    fx = FeatureExtractor(tight)
    for p, t in zip(random_walk(12, 61), hourly(61, FRIDAY_13H - 60 * 3_600_000), strict=True):
        x = fx.update(p, ts_ms=t)
    assert max(abs(v) for v in x[: len(NAMES)]) <= 0.5
    assert x[len(NAMES) + 1] == pytest.approx(math.cos(2 * math.pi * 13 / 24))  # -0.97


def test_calendar_features_need_the_event_time() -> None:
    fx = FeatureExtractor(CALENDAR)
    for p in random_walk(13, 60):
        assert fx.update(p) is None  # warming up: no vector, nothing to place in time
    with pytest.raises(ValueError, match="event time ts_ms"):
        fx.update(100.0)


def test_pickle_with_calendar_mid_stream_continues_identically() -> None:
    prices, times = random_walk(14, 400), hourly(400)
    fx = FeatureExtractor(CALENDAR)
    for p, t in zip(prices[:150], times[:150], strict=True):
        fx.update(p, ts_ms=t)
    copy = stored(fx)
    for p, t in zip(prices[150:], times[150:], strict=True):
        assert copy.update(p, ts_ms=t) == fx.update(p, ts_ms=t)


def test_an_extractor_pickled_before_calendar_features_restores_without_them() -> None:
    fx = FeatureExtractor(SETTINGS)
    for p in random_walk(15, 100):
        fx.update(p)
    state = pickle.loads(pickle.dumps(fx.__getstate__()))
    del state[1]["_calendar"]  # as pickled by the code before it
    old = FeatureExtractor.__new__(FeatureExtractor)
    old.__setstate__(state)
    assert old.update(101.0, ts_ms=FRIDAY_13H) == fx.update(101.0)


def test_spec_describes_the_calendar_features() -> None:
    spec = json.loads(json.dumps(feature_spec(CALENDAR)))
    assert spec["names"] == list(feature_names(CALENDAR))
    assert set(spec["calendar"]) == {"time", "scale", "hour_of_day", "day_of_week", "month_end"}
