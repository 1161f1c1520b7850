"""Pure summaries of a long-running daemon's samples, for the ``learner`` and ``soak``
scenarios: quantiles of the event-loop lag, the longest stretch without an adaptation, the
samples at the quarter points of a soak, whether a resource stayed bounded between its
second and last quarter, and whether the daemon kept its consumer-group membership (from its
log). No broker, no daemon: the unit tests call them on hand-made inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .invariants import Check
from .logscan import count_events, records

__all__ = [
    "Bound",
    "check_bounded",
    "check_membership",
    "longest_idle",
    "quantile",
    "quarter_points",
    "slope",
    "spread",
]


def quantile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1): the smallest value with at least
    ``q`` of the values at or below it; None for no values.

    >>> quantile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5), quantile(range(1, 101), 0.99)
    (3.0, 99)
    """
    data = sorted(values)
    if not data:
        return None
    rank = max(1, -(-q * len(data) // 1))  # ceil without floats drifting below an integer
    return data[min(int(rank), len(data)) - 1]


def spread(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, p50, p99 and max."""
    data = list(values)
    return {
        "n": len(data),
        "p50": quantile(data, 0.5),
        "p99": quantile(data, 0.99),
        "max": max(data) if data else None,
    }


def longest_idle(samples: Sequence[tuple[float, float]]) -> tuple[float | None, float]:
    """From ``(time, count)`` samples of a counter in time order: when it first rose (None:
    never), and the longest time between two of its rises after that (the end of the
    samples closes the last stretch; the whole span when it never rose).

    >>> longest_idle([(0, 0), (5, 0), (6, 1), (7, 2), (11, 2), (12, 3), (13, 3)])
    (6, 5)
    """
    if not samples:
        return None, 0.0
    first = next((t for t, n in samples if n > samples[0][1]), None)
    if first is None:
        return None, samples[-1][0] - samples[0][0]
    longest, since, last = 0.0, first, samples[0][1]
    for t, count in samples:
        if t > first and count > last:
            longest = max(longest, t - since)
            since = t
        if t >= first:
            last = max(last, count)
    return first, max(longest, samples[-1][0] - since)


def quarter_points(
    samples: Sequence[Mapping[str, Any]], key: str, target: float
) -> list[tuple[str, Mapping[str, Any]]]:
    """("start", "1/4", "1/2", "3/4": the first sample at which ``key`` reached that
    fraction of ``target``; a point never reached is left out) and ("end", the last
    sample)."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for label, fraction in (("start", 0.0), ("1/4", 0.25), ("1/2", 0.5), ("3/4", 0.75)):
        hit = next((s for s in samples if (s.get(key) or 0) >= fraction * target), None)
        if hit is not None:
            out.append((label, hit))
    if samples:
        out.append(("end", samples[-1]))
    return out


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None with fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


class Bound:
    """How much a resource may grow from the second quarter of a soak to its last: the last
    quarter's maximum (or median, ``statistic="median"``) may exceed the second quarter's by
    ``ratio`` of it plus ``slack`` (the second quarter, not the first: start-up, warm-up and
    the allocator's first growth are over by then).

    The maximum suits what only grows (memory, descriptors). A count that rises and falls
    with the load, as asyncio tasks do with the adaptations in flight, has its maximum set by
    the busiest sample; its median is the level a leak would raise.
    """

    def __init__(
        self, name: str, ratio: float = 0.0, slack: float = 0.0, statistic: str = "max"
    ) -> None:
        if statistic not in ("max", "median"):
            raise ValueError(f"statistic must be max or median, got {statistic!r}")
        self.name = name
        self.ratio = ratio
        self.slack = slack
        self.statistic = statistic

    def limit(self, second: float) -> float:
        return second * (1 + self.ratio) + self.slack

    def of(self, values: Sequence[float]) -> float:
        """The bound's statistic of one quarter's values."""
        if self.statistic == "max":
            return max(values)
        median = quantile(values, 0.5)
        assert median is not None, "a quarter with no values has no median"
        return float(median)

    def stated(self) -> str:
        parts = [f"{self.ratio:.0%}" if self.ratio else "", f"{self.slack:g}" if self.slack else ""]
        return " + ".join(p for p in parts if p) or "0"


def check_bounded(
    samples: Sequence[Mapping[str, Any]], key: str, bound: Bound, progress: str, target: float
) -> Check:
    """``key`` in the last quarter of the soak (``progress`` from 3/4 of ``target`` on) not
    above the second quarter (from 1/4 to 1/2) by more than ``bound``, comparing the bound's
    statistic of each quarter (the maximum, or the median)."""

    def values(lo: float, hi: float) -> list[float]:
        return [
            float(s[key])
            for s in samples
            if s.get(key) is not None and lo * target <= (s.get(progress) or 0) <= hi * target
        ]

    second, last = values(0.25, 0.5), values(0.75, float("inf"))
    stat = bound.statistic
    name = f"{bound.name} bounded (last quarter vs second, {stat}, margin {bound.stated()})"
    if not second or not last:
        return Check(name, False, f"not sampled in both quarters ({len(second)}, {len(last)})")
    a, b = bound.of(second), bound.of(last)
    limit = bound.limit(a)
    ok = b <= limit
    figures = {f"second_quarter_{stat}": a, f"last_quarter_{stat}": b, "limit": limit}
    maxima = ""
    if stat != "max":  # the peaks beside the statistic compared
        figures |= {"second_quarter_max": max(second), "last_quarter_max": max(last)}
        maxima = f"; maxima {max(second):,.0f} and {max(last):,.0f}"
    detail = (
        f"second quarter {stat} {a:,.0f}, last quarter {stat} {b:,.0f} "
        f"(limit {limit:,.0f}{maxima}): {'bounded' if ok else 'GREW'}"
    )
    return Check(name, ok, detail, figures)


def check_membership(lines: Iterable[str]) -> Check:
    """From one daemon's log up to its stop: the group assigned it its partitions once and
    never took them back (no second "partitions assigned", no "partitions revoked"), and
    aiokafka logged no failed heartbeat or rejoin."""
    lines = list(lines)
    counts = count_events(lines, ("partitions assigned", "partitions revoked"))
    group = [
        str(r.get("event", ""))[:200]
        for r in records(lines)
        if any(w in str(r.get("event", "")).lower() for w in ("heartbeat", "rejoin", "rebalanc"))
    ]
    assigned, revoked = counts["partitions assigned"], counts["partitions revoked"]
    ok = assigned == 1 and revoked == 0 and not group
    detail = (
        f"partitions assigned {assigned}x, revoked {revoked}x, "
        f"{len(group)} heartbeat/rebalance log lines"
    )
    if group:
        detail += f"; first {group[:2]}"
    return Check(
        "the consumer group never lost the daemon",
        ok,
        detail,
        {"assigned": assigned, "revoked": revoked, "group_log_lines": len(group)},
    )
