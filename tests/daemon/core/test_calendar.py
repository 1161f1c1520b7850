from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_support import stored

from adaptd.daemon.core.calendar import (
    CALENDAR_FEATURES,
    Calendar,
    calendar_columns,
    calendar_names,
    calendar_selection,
    calendar_spec,
)

ALL = CALENDAR_FEATURES
UTC = dt.UTC
DAY_MS = 86_400_000


def ms(*when: int) -> int:
    """Epoch milliseconds of a UTC date and time (pre-1970 included)."""
    return int(
        (dt.datetime(*when, tzinfo=UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC))
        / dt.timedelta(milliseconds=1)
    )


def features(ts_ms: int, chosen: tuple[str, ...] = ALL) -> dict[str, float]:
    cal = Calendar(chosen)
    return dict(zip(cal.names, cal.at(ts_ms), strict=True))


def last_weekday_of_month(year: int, month: int) -> dt.date:
    """Brute force: the latest Monday-to-Friday date of the month."""
    days = [dt.date(year, month, d) for d in range(1, 32) if _valid(year, month, d)]
    return max(d for d in days if d.weekday() < 5)


def _valid(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def test_names_come_in_a_fixed_order_whatever_the_order_chosen() -> None:
    assert calendar_names(ALL) == (
        "hour_of_day_sin",
        "hour_of_day_cos",
        "day_of_week_sin",
        "day_of_week_cos",
        "month_end",
        "quarter_end",
    )
    assert calendar_names(["quarter_end", "hour_of_day"]) == (
        "hour_of_day_sin",
        "hour_of_day_cos",
        "quarter_end",
    )
    assert calendar_names(()) == ()
    assert Calendar(reversed(ALL)).names == calendar_names(ALL)


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        (["hour_of_day", "minute"], r"calendar: unknown features \['minute'\]"),
        (["month_end", "month_end"], r"calendar: \['month_end'\] chosen more than once"),
    ],
)
def test_bad_choices_are_named(chosen: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calendar_selection(chosen)
    with pytest.raises(ValueError, match=message):
        Calendar(chosen)


def test_a_calendar_needs_a_feature() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Calendar(())


def test_friday_29_march_2024_at_13_utc_is_a_quarter_end() -> None:
    x = features(ms(2024, 3, 29, 13))
    hour, friday = 2 * math.pi * 13 / 24, 2 * math.pi * 4 / 7
    assert (x["hour_of_day_sin"], x["hour_of_day_cos"]) == pytest.approx(
        (math.sin(hour), math.cos(hour)), abs=1e-12
    )
    assert (x["day_of_week_sin"], x["day_of_week_cos"]) == pytest.approx(
        (math.sin(friday), math.cos(friday)), abs=1e-12
    )
    assert (x["month_end"], x["quarter_end"]) == (1.0, 1.0)
    assert x["hour_of_day_cos"] == pytest.approx(-0.9659, abs=1e-4)


@pytest.mark.parametrize(
    ("date", "month_end", "quarter_end"),
    [
        ((2024, 3, 28), 0.0, 0.0),  # the day before
        ((2024, 3, 30), 0.0, 0.0),  # Saturday: the weekday before was the month's last
        ((2024, 3, 31), 0.0, 0.0),  # Sunday, the last calendar day
        ((2024, 2, 29), 1.0, 0.0),  # a leap day on a Thursday
        ((2024, 6, 28), 1.0, 1.0),  # Friday before a Sunday 30 June
        ((2024, 12, 31), 1.0, 1.0),  # a Tuesday
        ((2023, 12, 29), 1.0, 1.0),  # 31 December 2023 was a Sunday
        ((2024, 4, 30), 1.0, 0.0),
        ((1969, 12, 31), 1.0, 1.0),  # before 1970: a negative ts_ms, a Wednesday
        ((1929, 10, 31), 1.0, 0.0),  # a Thursday
    ],
)
def test_month_and_quarter_end_on_known_dates(
    date: tuple[int, int, int], month_end: float, quarter_end: float
) -> None:
    for hour in (0, 12, 23):
        x = features(ms(*date, hour))
        assert (x["month_end"], x["quarter_end"]) == (month_end, quarter_end)


def test_month_end_is_the_last_weekday_of_every_month_for_sixty_years() -> None:
    cal = Calendar(["month_end", "quarter_end"])
    day = dt.date(1960, 1, 1)
    while day < dt.date(2020, 1, 1):
        got = cal.at(ms(day.year, day.month, day.day, 6))
        is_end = day == last_weekday_of_month(day.year, day.month)
        assert got == (float(is_end), float(is_end and day.month in (3, 6, 9, 12))), day
        day += dt.timedelta(days=1)


def test_weekday_and_time_of_day_before_1970() -> None:
    x = features(-1)  # 1969-12-31 23:59:59.999 UTC, a Wednesday
    wednesday = 2 * math.pi * 2 / 7
    assert (x["day_of_week_sin"], x["day_of_week_cos"]) == pytest.approx(
        (math.sin(wednesday), math.cos(wednesday))
    )
    assert (x["hour_of_day_sin"], x["hour_of_day_cos"]) == pytest.approx((0.0, 1.0), abs=1e-6)


def test_time_of_day_is_continuous_across_midnight_and_includes_minutes() -> None:
    cal = Calendar(["hour_of_day"])
    before, after = cal.at(ms(2024, 5, 6) - 1), cal.at(ms(2024, 5, 6))
    assert after == (0.0, 1.0)
    assert math.dist(before, after) < 1e-6
    half_past = cal.at(ms(2024, 5, 6, 6, 30))
    assert math.atan2(*half_past) == pytest.approx(2 * math.pi * 6.5 / 24)


def test_every_weekday_has_its_own_point_and_the_week_is_centred() -> None:
    monday = ms(2024, 5, 6)
    points = [Calendar(["day_of_week"]).at(monday + d * DAY_MS) for d in range(7)]
    assert len(set(points)) == 7
    assert all(math.hypot(*p) == pytest.approx(1.0) for p in points)
    assert np.mean(points, axis=0) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert points[0] == (0.0, 1.0)  # Monday
    assert Calendar(["day_of_week"]).at(monday + 7 * DAY_MS) == points[0]


def test_the_cache_per_date_gives_what_a_fresh_calendar_gives() -> None:
    """Times that go back and forth across midnights, as a stream's events may within its
    out-of-order tolerance."""
    base = ms(2024, 3, 31, 23)
    times = [base + k * 1_700_000 for k in (0, 1, 2, 3, 2, 1, 0, 5, 60, 4)]
    cal = Calendar(ALL)
    for t in times:
        assert cal.at(t) == Calendar(ALL).at(t)


times_st = st.integers(min_value=ms(1900, 1, 1), max_value=ms(2200, 1, 1))
choices_st = st.sets(st.sampled_from(ALL), min_size=1).map(sorted)


@given(st.lists(times_st, min_size=1, max_size=40), choices_st)
@settings(max_examples=80, deadline=None)
def test_numpy_alone_computes_the_same_features(times: list[int], chosen: list[str]) -> None:
    cal = Calendar(chosen)
    online = np.array([cal.at(t) for t in times])
    batch = calendar_columns(np.array(times, dtype=np.int64), chosen)
    assert batch.shape == (len(times), len(cal.names))
    np.testing.assert_allclose(batch, online, rtol=0, atol=1e-9)


def test_numpy_alone_without_features_is_empty() -> None:
    assert calendar_columns([0, 1], ()).shape == (2, 0)


def test_bounded_and_flags_are_zero_or_one() -> None:
    cal = Calendar(ALL)
    start = ms(2023, 1, 1)
    x = np.array([cal.at(start + k * 3_600_000) for k in range(24 * 400)])
    assert np.all(np.abs(x[:, :4]) <= 1.0)
    assert set(np.unique(x[:, 4:])) == {0.0, 1.0}
    # A day of hours is centred on the circle; a quarter end is a month end.
    np.testing.assert_allclose(x[:24, :2].mean(axis=0), 0.0, atol=1e-12)
    assert np.all(x[:, 5] <= x[:, 4])
    assert x[:, 4].sum() == 24 * 13  # 13 month ends from January 2023 to early February 2024


def test_pickled_mid_stream_continues_identically() -> None:
    cal = Calendar(ALL)
    times = [ms(2024, 1, 1) + k * 3_000_000 for k in range(200)]
    for t in times[:100]:
        cal.at(t)
    copy = stored(cal)
    assert copy.names == cal.names
    for t in times[100:]:
        assert copy.at(t) == cal.at(t)


def test_spec_defines_only_the_chosen_features_and_nothing_without_them() -> None:
    assert calendar_spec(()) == {}
    spec = calendar_spec(["month_end", "hour_of_day"])["calendar"]
    assert set(spec) == {"time", "scale", "hour_of_day", "month_end"}
    assert "UTC" in spec["time"]
    assert spec["hour_of_day"].startswith("hour_of_day_sin, hour_of_day_cos:")
    assert "busday_offset" in spec["month_end"]


def test_every_date_of_a_year_against_the_brute_force_in_numpy() -> None:
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=k) for k in range(365)]
    times = [ms(d.year, d.month, d.day, 15) for d in days]
    got = calendar_columns(times, ["month_end", "quarter_end"])
    ends = [float(d == last_weekday_of_month(d.year, d.month)) for d in days]
    quarters = [e * (d.month % 3 == 0) for e, d in zip(ends, days, strict=True)]
    np.testing.assert_array_equal(got, np.column_stack([ends, quarters]))
    assert list(itertools.compress(days, got[:, 1])) == [
        dt.date(2025, 3, 31),
        dt.date(2025, 6, 30),
        dt.date(2025, 9, 30),
        dt.date(2025, 12, 31),
    ]


def test_dates_before_1970_have_their_weekday_and_month_ends() -> None:
    day = 86_400_000
    # 1969-12-31 was a Wednesday (2), 1929-10-31 a Thursday and the last weekday of October.
    wed = -day
    thu = -1_267_660_800_000
    cols = calendar_columns([wed, thu, thu - day], ["day_of_week", "month_end"])
    expected = [(2, 1.0), (3, 1.0), (2, 0.0)]  # 1969-12-31 also ended its month
    for row, (weekday, month_end) in zip(cols, expected, strict=True):
        phase = 2 * math.pi * weekday / 7
        assert row[:2] == pytest.approx([math.sin(phase), math.cos(phase)])
        assert row[2] == month_end
    one = Calendar(["day_of_week", "month_end", "hour_of_day", "quarter_end"])
    for t in (wed + 3_600_000, thu, -62_135_596_800_000):
        batch = calendar_columns([t], one.selection)[0]
        assert one.at(t) == pytest.approx(batch)
