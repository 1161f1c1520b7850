"""The demo's report: shift detection scored against annotated change points, a summary
table, and one price plot per stream.

Scoring follows the Turing change-point benchmark (TCPD) with one difference that suits an
online detector: a detection is a hit for an annotated row ``a`` when it falls in
``[a - early, a + margin]``. It cannot come before the change it reports, so ``early`` is 0
by default; a few rows of ``early`` forgive annotators who mark a change a little late.
Each annotation takes at most one detection (the first in its window) and each detection
serves at most one annotation; the rest are false alarms. TCPD uses a symmetric margin of 5
rows of its subsampled series, which ``margin_for`` converts to rows of the full series.

Examples
--------
>>> score = score_shifts([101, 104, 230, 500], annotated=[100, 220], margin=15)
>>> score.hits, score.misses, score.false_alarms, score.mean_delay
(2, 0, 2, 5.5)
>>> round(score.precision, 2), score.recall, round(score.f1, 3)
(0.5, 1.0, 0.667)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from rich.table import Table

from adaptd.adapters.tasks.series import MarketSeries

from .served import Served
from .task_report import draw_risk, draw_strategy

TCPD_MARGIN = 5
DASH = "–"


@dataclass
class StreamSummary:
    """What the daemon did on one stream; row indices count this stream's events from 0."""

    stream: str
    name: str
    events: int
    shifts: list[int] = field(default_factory=list)
    annotated: tuple[int, ...] = ()
    published: int = 0
    rejected: int = 0
    adapt_latency_ms: list[float] = field(default_factory=list)
    loss_before: list[float] = field(default_factory=list)
    loss_after: list[float] = field(default_factory=list)
    loss_scratch: list[float] = field(default_factory=list)  # adapted from a random init
    published_rows: list[int] = field(default_factory=list)  # event index of each publication


class ShiftScore(NamedTuple):
    hits: int
    misses: int
    false_alarms: int
    precision: float  # hits / detections; 1.0 when nothing was detected
    recall: float  # hits / annotations; 1.0 when nothing was annotated
    f1: float
    mean_delay: float | None  # mean of (detection - annotation) over hits, in events


def score_shifts(
    detected: Sequence[int], annotated: Sequence[int], margin: int, *, early: int = 0
) -> ShiftScore:
    """Match detections to annotated change points (see the module docstring).

    Parameters
    ----------
    detected, annotated
        Row indices, in any order; duplicates in ``annotated`` count once.
    margin
        How many rows after an annotated point a detection may come.
    early
        How many rows before an annotated point a detection may come.
    """
    if margin < 0 or early < 0:
        raise ValueError(f"margin and early must be >= 0, got margin={margin}, early={early}")
    detections = sorted(detected)
    used = [False] * len(detections)
    delays: list[int] = []
    start = 0  # windows move right with the annotations, so earlier detections are spent
    for point in sorted(set(annotated)):
        while start < len(detections) and detections[start] < point - early:
            start += 1
        for j in range(start, len(detections)):
            if detections[j] > point + margin:
                break
            if not used[j]:
                used[j] = True
                delays.append(detections[j] - point)
                break
    hits = len(delays)
    n_annotated = len(set(annotated))
    precision = hits / len(detections) if detections else 1.0
    recall = hits / n_annotated if n_annotated else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ShiftScore(
        hits=hits,
        misses=n_annotated - hits,
        false_alarms=len(detections) - hits,
        precision=precision,
        recall=recall,
        f1=f1,
        mean_delay=float(np.mean(delays)) if delays else None,
    )


def margin_for(series: MarketSeries, tcpd_margin: int = TCPD_MARGIN) -> int:
    """TCPD's margin (rows of the annotated, subsampled series) in rows of ``series``.

    >>> from adaptd.adapters.tasks.series import load
    >>> [margin_for(load(name)) for name in ("apple", "brent", "bitcoin")]
    [15, 50, 5]
    """
    return tcpd_margin * series.sampling_step


def _percentiles(values: Sequence[float]) -> str:
    if not values:
        return DASH
    p50, p99 = np.percentile(np.asarray(values, dtype=float), [50, 99])
    return f"{p50:.1f} / {p99:.1f}"


def _loss_change(before: Sequence[float], after: Sequence[float]) -> str:
    if not before and not after:
        return DASH
    left = f"{np.mean(before):.4g}" if before else DASH
    right = f"{np.mean(after):.4g}" if after else DASH
    return f"{left} → {right}"


def summary_table(
    rows: Sequence[StreamSummary], margin: int | Mapping[str, int], *, early: int = 0
) -> Table:
    """One line per stream; ``margin`` is one number or one per stream id."""
    table = Table(title="adaptd: regime shifts and adaptation per stream")
    for header in ("stream", "events", "shifts detected", "annotated change points"):
        table.add_column(header, justify="left" if header == "stream" else "right")
    table.add_column("hits within margin", justify="right")
    table.add_column("published", justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("adaptation latency p50 / p99 (ms)", justify="right")
    table.add_column("query loss before → after (mean)", justify="right")
    table.add_column("from scratch (mean)", justify="right")
    for row in rows:
        window = margin[row.stream] if isinstance(margin, Mapping) else margin
        score = score_shifts(row.shifts, row.annotated, window, early=early)
        hits = f"{score.hits}/{len(set(row.annotated))} (≤{window})" if row.annotated else DASH
        table.add_row(
            f"{row.stream} ({row.name})",
            f"{row.events:,}",
            str(len(row.shifts)),
            str(len(set(row.annotated))),
            hits,
            str(row.published),
            str(row.rejected),
            _percentiles(row.adapt_latency_ms),
            _loss_change(row.loss_before, row.loss_after),
            f"{np.mean(row.loss_scratch):.4g}" if row.loss_scratch else DASH,
        )
    return table


def plot_stream(
    series: MarketSeries,
    summary: StreamSummary,
    path: Path,
    *,
    margin: int | None = None,
    early: int = 0,
    served: Served | None = None,
) -> Path:
    """Write a PNG of the price (log scale) with detected shifts, annotated change points
    (shaded over their scoring window, ``margin_for(series)`` by default) and the rows at
    which adapted policies were published; with ``served``, panels below it of the risk
    task's forecast volatility against the realised one and of the strategy task's position
    and selected strategy per regime. Returns ``path``."""
    path = Path(path)
    window = margin_for(series) if margin is None else margin
    n = summary.events if 0 < summary.events <= len(series) else len(series)
    when = series.ts_ms[:n].astype("datetime64[ms]")
    price = series.price[:n]

    def inside(rows: Sequence[int]) -> list[int]:
        return sorted({r for r in rows if 0 <= r < n})

    panels = [] if served is None else [p for p in (served.risk, served.strategy) if p is not None]
    fig = Figure(figsize=(12, 4.8 + 2.4 * len(panels)), dpi=100, layout="constrained")
    axes = fig.subplots(
        1 + len(panels), 1, sharex=True, squeeze=False, height_ratios=[2.0] + [1.0] * len(panels)
    )[:, 0]
    ax = axes[0]  # no pyplot: no display
    ax.plot(when, price, color="0.25", linewidth=0.9, label=f"{series.stream} price")
    ax.set_yscale("log")
    for k, row in enumerate(inside(summary.annotated)):
        lo, hi = when[max(row - early, 0)], when[min(row + window, n - 1)]
        span = f"-{early}/+{window}" if early else f"+{window}"
        label = f"annotated change ({span} rows scoring window)" if k == 0 else None
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.25, linewidth=0, label=label)
    annotated = inside(summary.annotated)
    if annotated:
        ax.plot(when[annotated], price[annotated], "o", color="tab:orange", markersize=5)
    for k, row in enumerate(inside(summary.shifts)):
        label = "detected shift" if k == 0 else None
        ax.axvline(when[row], color="tab:red", linewidth=0.9, alpha=0.8, label=label)
    published = inside(summary.published_rows)
    if published:
        ax.plot(
            when[published],
            np.full(len(published), 0.02),
            "|",
            color="tab:blue",
            markersize=10,
            transform=ax.get_xaxis_transform(),  # x in data, y in axes: a rug along the bottom
            label="adapted policy published",
        )
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("price (log scale)")
    ax.set_title(
        f"{series.stream} ({series.name}), {when[0].astype('datetime64[D]')} to "
        f"{when[-1].astype('datetime64[D]')}: {len(inside(summary.shifts))} shifts detected, "
        f"{len(annotated)} annotated"
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    if served is not None:
        below = iter(axes[1:])
        if served.risk is not None:
            draw_risk(next(below), when, served)
        if served.strategy is not None:
            draw_strategy(next(below), when, served)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
