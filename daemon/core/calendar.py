"""Calendar features of an event: where its time falls in the day, the week and the month.

From the event time ``ts_ms`` (epoch milliseconds) read in UTC; dimensionless and bounded,
so they are not volatility-scaled or clipped. Each chosen feature (``features.calendar``)
adds these columns, in this order whatever order it is chosen in:

- ``hour_of_day``: ``hour_of_day_sin``, ``hour_of_day_cos`` = sin, cos of 2 pi s / 86400,
  ``s`` the seconds since UTC midnight (fractions included): the time of day on a circle, so
  23:59 sits next to 00:00;
- ``day_of_week``: ``day_of_week_sin``, ``day_of_week_cos`` = sin, cos of 2 pi w / 7, ``w``
  the UTC weekday (Monday 0 to Sunday 6);
- ``month_end``: 1.0 on the last weekday (Monday to Friday) of the UTC month, else 0.0: the
  last trading day of a market that trades on weekdays, holidays ignored (no holiday
  calendar is assumed);
- ``quarter_end``: ``month_end`` in March, June, September and December.

Which of them mean something depends on a stream's frequency: ``hour_of_day`` needs events
more often than daily, the others daily events or finer. There is no automatic choice per
stream: the streams of a daemon share one feature list, its networks are built for that
width, and a subscriber must compute each named feature from the event time alone. Turning
a feature off on some streams after looking at their spacing would give one name two
meanings and put a per-stream decision in the snapshots that no message carries. The
operator chooses; a feature that the stream's frequency makes constant (``hour_of_day`` on
daily closes stamped at midnight) is a constant input, harmless to the network.

:func:`calendar_columns` computes the same values with numpy alone, for a batch of times.

>>> cal = Calendar(("quarter_end", "hour_of_day", "day_of_week"))
>>> cal.names
('hour_of_day_sin', 'hour_of_day_cos', 'day_of_week_sin', 'day_of_week_cos', 'quarter_end')
>>> friday = 1_711_717_200_000  # 2024-03-29 13:00 UTC, a Friday, the last weekday of March
>>> [round(v, 4) for v in cal.at(friday)]
[-0.2588, -0.9659, -0.4339, -0.901, 1.0]
>>> [round(v, 4) for v in cal.at(friday + 86_400_000)]  # Saturday 30 March: no quarter end
[-0.2588, -0.9659, -0.9749, -0.2225, 0.0]
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CALENDAR_FEATURES",
    "Calendar",
    "CalendarFeature",
    "calendar_columns",
    "calendar_names",
    "calendar_selection",
    "calendar_spec",
]

CalendarFeature = Literal["hour_of_day", "day_of_week", "month_end", "quarter_end"]
CALENDAR_FEATURES: tuple[str, ...] = get_args(CalendarFeature)
"""Every calendar feature, in the order of their columns."""

_COLUMNS = {
    "hour_of_day": ("hour_of_day_sin", "hour_of_day_cos"),
    "day_of_week": ("day_of_week_sin", "day_of_week_cos"),
    "month_end": ("month_end",),
    "quarter_end": ("quarter_end",),
}
_DEFINITIONS = {
    "hour_of_day": "sin, cos of 2 pi (ts_ms mod 86400000) / 86400000",
    "day_of_week": (
        "sin, cos of 2 pi w / 7, w = (floor(ts_ms / 86400000) + 3) mod 7 (Monday 0; "
        "1970-01-01 was a Thursday)"
    ),
    "month_end": (
        "1 on the last Monday-to-Friday date of the month, else 0 (holidays ignored): with "
        "numpy, d == np.busday_offset(last day of d's month, 0, roll='backward')"
    ),
    "quarter_end": "month_end in March, June, September and December, else 0",
}
_DAY_MS = 86_400_000
_RAD_PER_MS = 2.0 * math.pi / _DAY_MS
_EPOCH = dt.date(1970, 1, 1).toordinal()
_WEEKDAYS = tuple(
    (math.sin(2.0 * math.pi * w / 7.0), math.cos(2.0 * math.pi * w / 7.0)) for w in range(7)
)
_sin, _cos = math.sin, math.cos  # module globals: cheaper per event


def calendar_selection(names: Iterable[str]) -> tuple[str, ...]:
    """The chosen calendar features in column order; ValueError on an unknown or repeated one.

    >>> calendar_selection(["month_end", "hour_of_day"])
    ('hour_of_day', 'month_end')
    """
    names = tuple(names)
    unknown = [n for n in names if n not in CALENDAR_FEATURES]
    if unknown:
        raise ValueError(f"calendar: unknown features {unknown} (known: {CALENDAR_FEATURES})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"calendar: {repeated} chosen more than once")
    return tuple(n for n in CALENDAR_FEATURES if n in names)


def calendar_names(selection: Iterable[str]) -> tuple[str, ...]:
    """The column names of the chosen calendar features, in order."""
    return tuple(c for n in calendar_selection(selection) for c in _COLUMNS[n])


def calendar_spec(selection: Iterable[str]) -> dict[str, Any]:
    """``{"calendar": definitions}`` for a feature spec, or ``{}`` when none is chosen (so a
    spec without calendar features stays as it was)."""
    chosen = calendar_selection(selection)
    if not chosen:
        return {}
    return {
        "calendar": {
            "time": "the market event's ts as epoch milliseconds (ts_ms), read in UTC",
            "scale": "none: bounded by construction, neither volatility-scaled nor clipped",
            **{n: f"{', '.join(_COLUMNS[n])}: {_DEFINITIONS[n]}" for n in chosen},
        }
    }


def calendar_columns(ts_ms: ArrayLike, selection: Iterable[str]) -> np.ndarray:
    """The chosen calendar features of event times (epoch milliseconds), ``(n, columns)``,
    with numpy alone: the batch twin of :meth:`Calendar.at`.

    >>> calendar_columns([1_711_717_200_000], ["month_end", "day_of_week"]).round(4)
    array([[-0.4339, -0.901 ,  1.    ]])
    """
    chosen = calendar_selection(selection)
    t = np.asarray(ts_ms, dtype=np.int64).reshape(-1)
    day = t // _DAY_MS
    out: list[np.ndarray] = []
    if "hour_of_day" in chosen:
        phase = (t - day * _DAY_MS) * _RAD_PER_MS
        out += [np.sin(phase), np.cos(phase)]
    if "day_of_week" in chosen:
        phase = ((day + 3) % 7) * (2.0 * np.pi / 7.0)
        out += [np.sin(phase), np.cos(phase)]
    if "month_end" in chosen or "quarter_end" in chosen:
        d = day.astype("datetime64[D]")
        month = d.astype("datetime64[M]")
        last = (month + 1).astype("datetime64[D]") - 1
        month_end = d == np.busday_offset(last, 0, roll="backward")
        if "month_end" in chosen:
            out.append(month_end.astype(np.float64))
        if "quarter_end" in chosen:
            out.append((month_end & (month.astype(np.int64) % 3 == 2)).astype(np.float64))
    return np.stack(out, axis=1) if out else np.empty((len(t), 0))


class Calendar:
    """The chosen calendar features of one stream's events, one event at a time.

    Everything but the time of day depends only on the UTC date, so it is computed once per
    date and reused (a stream's events come in about time order); per event the cost is one
    ``divmod`` and, with ``hour_of_day``, a sine and a cosine.

    Parameters
    ----------
    selection
        Names among :data:`CALENDAR_FEATURES`, in any order.
    """

    __slots__ = ("_daily", "_date", "_hour", "names", "selection")

    def __init__(self, selection: Iterable[str]) -> None:
        self.selection = calendar_selection(selection)
        if not self.selection:
            raise ValueError("calendar: choose at least one feature")
        self.names = calendar_names(self.selection)
        self._hour = "hour_of_day" in self.selection
        self._date: int | None = None
        self._daily: tuple[float, ...] = ()

    def at(self, ts_ms: int) -> tuple[float, ...]:
        """The features of an event at ``ts_ms`` (years 1 to 9999)."""
        day, ms = divmod(ts_ms, _DAY_MS)
        if day != self._date:
            self._daily = self._of_date(day)
            self._date = day
        if self._hour:
            phase = ms * _RAD_PER_MS
            return (_sin(phase), _cos(phase), *self._daily)
        return self._daily

    def _of_date(self, day: int) -> tuple[float, ...]:
        date = dt.date.fromordinal(day + _EPOCH)
        chosen = self.selection
        out: list[float] = []
        if "day_of_week" in chosen:
            out += _WEEKDAYS[date.weekday()]
        if "month_end" in chosen or "quarter_end" in chosen:
            if date.month == 12:
                last = date.replace(day=31)
            else:
                last = date.replace(month=date.month + 1, day=1) - dt.timedelta(days=1)
            last -= dt.timedelta(days=max(0, last.weekday() - 4))  # Saturday, Sunday: Friday
            month_end = date == last
            if "month_end" in chosen:
                out.append(1.0 if month_end else 0.0)
            if "quarter_end" in chosen:
                out.append(1.0 if month_end and date.month % 3 == 0 else 0.0)
        return tuple(out)
